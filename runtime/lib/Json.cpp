//===- Json.cpp - A small JSON reader and writer --------------------------===//
//
// Strict RFC 8259 JSON: a recursive-descent parser (numbers become doubles,
// strings are UTF-8 with every escape decoded) and a writer that prints
// numbers so that they read back to the same double.
//
//===----------------------------------------------------------------------===//

#include "mamba3/Json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

using namespace mamba3;

//===----------------------------------------------------------------------===//
// JsonValue
//===----------------------------------------------------------------------===//

JsonValue JsonValue::boolean(bool b) {
  JsonValue v;
  v.k = Kind::Bool;
  v.b = b;
  return v;
}

JsonValue JsonValue::number(double d) {
  JsonValue v;
  v.k = Kind::Number;
  v.num = d;
  return v;
}

JsonValue JsonValue::string(std::string s) {
  JsonValue v;
  v.k = Kind::String;
  v.str = std::move(s);
  return v;
}

JsonValue JsonValue::array() {
  JsonValue v;
  v.k = Kind::Array;
  return v;
}

JsonValue JsonValue::object() {
  JsonValue v;
  v.k = Kind::Object;
  return v;
}

const JsonValue *JsonValue::get(const std::string &key) const {
  if (k != Kind::Object)
    return nullptr;
  for (const auto &member : obj)
    if (member.first == key)
      return &member.second;
  return nullptr;
}

void JsonValue::set(const std::string &key, JsonValue v) {
  // Setting a member turns a null into an object, so that building a document
  // needs no explicit JsonValue::object() for every level.
  if (k == Kind::Null)
    k = Kind::Object;
  if (k != Kind::Object)
    return;
  for (auto &member : obj) {
    if (member.first == key) {
      member.second = std::move(v);
      return;
    }
  }
  obj.emplace_back(key, std::move(v));
}

void JsonValue::push(JsonValue v) {
  if (k == Kind::Null)
    k = Kind::Array;
  if (k == Kind::Array)
    arr.push_back(std::move(v));
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

static void dumpString(const std::string &s, std::string &os) {
  os += '"';
  for (unsigned char c : s) {
    // clang-format off
    switch (c) {
    case '"': os += "\\\""; break;
    case '\\': os += "\\\\"; break;
    case '\b': os += "\\b"; break;
    case '\f': os += "\\f"; break;
    case '\n': os += "\\n"; break;
    case '\r': os += "\\r"; break;
    case '\t': os += "\\t"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        os += buf;
      } else {
        os += static_cast<char>(c); // UTF-8 passes through unchanged
      }
    }
    // clang-format on
  }
  os += '"';
}

static void dumpNumber(double d, std::string &os) {
  // JSON has no NaN or infinity; null is what Python's json module would
  // refuse to write, and what every reader accepts.
  if (!std::isfinite(d)) {
    os += "null";
    return;
  }
  // std::to_chars without a precision gives the shortest text that reads
  // back to the same double, and prints integers without a fraction.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d);
  os.append(buf, res.ptr);
}

static void dumpValue(const JsonValue &v, int indent, int depth,
                      std::string &os) {
  auto newline = [&](int level) {
    if (indent <= 0)
      return;
    os += '\n';
    os.append(static_cast<size_t>(indent * level), ' ');
  };
  switch (v.kind()) {
  case JsonValue::Kind::Null:
    os += "null";
    break;
  case JsonValue::Kind::Bool:
    os += v.asBool() ? "true" : "false";
    break;
  case JsonValue::Kind::Number:
    dumpNumber(v.asNumber(), os);
    break;
  case JsonValue::Kind::String:
    dumpString(v.asString(), os);
    break;
  case JsonValue::Kind::Array: {
    if (v.items().empty()) {
      os += "[]";
      break;
    }
    os += '[';
    bool first = true;
    for (const JsonValue &item : v.items()) {
      if (!first)
        os += ',';
      first = false;
      newline(depth + 1);
      dumpValue(item, indent, depth + 1, os);
    }
    newline(depth);
    os += ']';
    break;
  }
  case JsonValue::Kind::Object: {
    if (v.members().empty()) {
      os += "{}";
      break;
    }
    os += '{';
    bool first = true;
    for (const auto &member : v.members()) {
      if (!first)
        os += ',';
      first = false;
      newline(depth + 1);
      dumpString(member.first, os);
      os += indent > 0 ? ": " : ":";
      dumpValue(member.second, indent, depth + 1, os);
    }
    newline(depth);
    os += '}';
    break;
  }
  }
}

std::string JsonValue::dump(int indent) const {
  std::string os;
  dumpValue(*this, indent, 0, os);
  return os;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

namespace {

class Parser {
public:
  explicit Parser(const std::string &text) : text(text) {}

  bool parseDocument(JsonValue &out, std::string &error) {
    skipSpace();
    bool ok = parseValue(out, 0);
    if (ok) {
      skipSpace();
      if (!atEnd())
        ok = fail("unexpected " + found() + " after the JSON value");
    }
    if (!ok)
      error = message;
    return ok;
  }

private:
  // Deep enough for any real document; guards the recursion against stack
  // overflow on hostile input such as ten thousand '['.
  static constexpr int kMaxDepth = 256;

  const std::string &text;
  size_t pos = 0;
  std::string message;

  bool atEnd() const { return pos >= text.size(); }
  char peek() const { return atEnd() ? '\0' : text[pos]; }

  /// Records the first error with its byte offset (and line:column, which is
  /// what a person looks for in an editor); always returns false.
  bool fail(const std::string &what, size_t at) {
    if (!message.empty())
      return false;
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    message = "JSON error at byte " + std::to_string(at) + " (line " +
              std::to_string(line) + ", column " + std::to_string(column) +
              "): " + what;
    return false;
  }
  bool fail(const std::string &what) { return fail(what, pos); }

  /// What stands at the current position, for messages.
  std::string found() const {
    if (atEnd())
      return "end of input";
    unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "byte 0x%02x", c);
      return buf;
    }
    return std::string("'") + static_cast<char>(c) + "'";
  }

  void skipSpace() {
    while (!atEnd() && (text[pos] == ' ' || text[pos] == '\t' ||
                        text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }

  bool parseValue(JsonValue &out, int depth) {
    if (depth > kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth));
    switch (peek()) {
    case '{':
      return parseObject(out, depth);
    case '[':
      return parseArray(out, depth);
    case '"': {
      std::string s;
      if (!parseString(s))
        return false;
      out = JsonValue::string(std::move(s));
      return true;
    }
    case 't':
      return parseLiteral("true", JsonValue::boolean(true), out);
    case 'f':
      return parseLiteral("false", JsonValue::boolean(false), out);
    case 'n':
      return parseLiteral("null", JsonValue(), out);
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber(out);
      return fail("expected a value, found " + found());
    }
  }

  bool parseLiteral(const char *word, JsonValue value, JsonValue &out) {
    size_t n = std::strlen(word);
    if (text.compare(pos, n, word) != 0)
      return fail(std::string("expected '") + word + "'");
    pos += n;
    out = std::move(value);
    return true;
  }

  bool parseNumber(JsonValue &out) {
    // Check the JSON grammar first (from_chars alone would accept "01",
    // "1." and the like), then convert the span locale-independently.
    size_t start = pos;
    if (peek() == '-')
      ++pos;
    auto digits = [&] {
      size_t from = pos;
      while (!atEnd() && text[pos] >= '0' && text[pos] <= '9')
        ++pos;
      return pos - from;
    };
    if (peek() == '0') {
      ++pos;
    } else if (digits() == 0) {
      return fail("expected a digit in number");
    }
    if (peek() == '.') {
      ++pos;
      if (digits() == 0)
        return fail("expected a digit after '.' in number");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos;
      if (peek() == '+' || peek() == '-')
        ++pos;
      if (digits() == 0)
        return fail("expected a digit in the exponent of number");
    }
    double d = 0;
    auto res = std::from_chars(text.data() + start, text.data() + pos, d);
    if (res.ec == std::errc::result_out_of_range) {
      // Too large or too small for a double: like strtod, give an infinity
      // or a zero of the right sign. Which one follows from the decimal
      // exponent of the first nonzero digit.
      d = decimalExponent(start, pos) > 0 ? HUGE_VAL : 0.0;
      if (text[start] == '-')
        d = -d;
    } else if (res.ec != std::errc() || res.ptr != text.data() + pos) {
      return fail("malformed number", start);
    }
    out = JsonValue::number(d);
    return true;
  }

  /// For a syntactically valid number in [from, to): the power of ten of its
  /// leading nonzero digit, plus one (saturating; 0 when all digits are 0).
  int64_t decimalExponent(size_t from, size_t to) const {
    int64_t lead = 0;  // digits before the point, after leading zeros
    int64_t zeros = 0; // zeros after the point before the first nonzero
    bool seenNonzero = false, afterPoint = false;
    size_t i = from;
    for (; i < to && text[i] != 'e' && text[i] != 'E'; ++i) {
      char c = text[i];
      if (c == '.') {
        afterPoint = true;
      } else if (c >= '0' && c <= '9') {
        if (c != '0')
          seenNonzero = true;
        if (!afterPoint && seenNonzero)
          ++lead;
        else if (afterPoint && !seenNonzero)
          ++zeros;
      }
    }
    if (!seenNonzero)
      return 0;
    int64_t exponent = 0;
    if (i < to) {
      bool negative = text[++i] == '-';
      if (text[i] == '+' || text[i] == '-')
        ++i;
      for (; i < to && exponent < (int64_t(1) << 40); ++i)
        exponent = exponent * 10 + (text[i] - '0');
      if (negative)
        exponent = -exponent;
    }
    return (lead > 0 ? lead : -zeros) + exponent;
  }

  bool parseHex4(unsigned &code) {
    code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = peek();
      unsigned digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        return fail("expected 4 hex digits after '\\u'");
      code = code * 16 + digit;
      ++pos;
    }
    return true;
  }

  static void appendUtf8(unsigned code, std::string &s) {
    if (code < 0x80) {
      s += static_cast<char>(code);
    } else if (code < 0x800) {
      s += static_cast<char>(0xc0 | (code >> 6));
      s += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      s += static_cast<char>(0xe0 | (code >> 12));
      s += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (code >> 18));
      s += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  bool parseString(std::string &s) {
    size_t open = pos++; // the opening quote
    while (true) {
      if (atEnd())
        return fail("unterminated string (it starts at byte " +
                    std::to_string(open) + ")");
      unsigned char c = static_cast<unsigned char>(text[pos]);
      if (c == '"') {
        ++pos;
        return true;
      }
      if (c < 0x20)
        return fail("control character " + found() +
                    " in string; it must be escaped");
      if (c != '\\') {
        s += static_cast<char>(c);
        ++pos;
        continue;
      }
      size_t escape = pos++;
      if (atEnd())
        return fail("unterminated string (it starts at byte " +
                    std::to_string(open) + ")");
      char e = text[pos++];
      // clang-format off
      switch (e) {
      case '"': s += '"'; break;
      case '\\': s += '\\'; break;
      case '/': s += '/'; break;
      case 'b': s += '\b'; break;
      case 'f': s += '\f'; break;
      case 'n': s += '\n'; break;
      case 'r': s += '\r'; break;
      case 't': s += '\t'; break;
      // clang-format on
      case 'u': {
        unsigned code;
        if (!parseHex4(code))
          return false;
        if (code >= 0xdc00 && code <= 0xdfff)
          return fail("unpaired low surrogate in '\\u' escape", escape);
        if (code >= 0xd800 && code <= 0xdbff) {
          // A high surrogate must be followed by an escaped low surrogate.
          unsigned low;
          if (text.compare(pos, 2, "\\u") != 0)
            return fail("high surrogate not followed by a '\\u' low surrogate",
                        escape);
          pos += 2;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return fail("high surrogate not followed by a low surrogate",
                        escape);
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(code, s);
        break;
      }
      default:
        return fail("invalid escape '\\" + std::string(1, e) + "' in string",
                    escape);
      }
    }
  }

  bool parseArray(JsonValue &out, int depth) {
    ++pos; // '['
    out = JsonValue::array();
    skipSpace();
    if (peek() == ']') {
      ++pos;
      return true;
    }
    while (true) {
      JsonValue item;
      skipSpace();
      if (!parseValue(item, depth + 1))
        return false;
      out.push(std::move(item));
      skipSpace();
      if (peek() == ',') {
        ++pos;
        continue;
      }
      if (peek() == ']') {
        ++pos;
        return true;
      }
      return fail("expected ',' or ']' in array, found " + found());
    }
  }

  bool parseObject(JsonValue &out, int depth) {
    ++pos; // '{'
    out = JsonValue::object();
    skipSpace();
    if (peek() == '}') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      if (peek() != '"')
        return fail("expected a string key in object, found " + found());
      size_t keyPos = pos;
      std::string key;
      if (!parseString(key))
        return false;
      // Duplicate keys are legal JSON but always a bug in the files this
      // project reads (manifests, golden cases); say so instead of guessing.
      if (out.get(key))
        return fail("duplicate key \"" + key + "\" in object", keyPos);
      skipSpace();
      if (peek() != ':')
        return fail("expected ':' after object key, found " + found());
      ++pos;
      skipSpace();
      JsonValue value;
      if (!parseValue(value, depth + 1))
        return false;
      out.set(key, std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos;
        continue;
      }
      if (peek() == '}') {
        ++pos;
        return true;
      }
      return fail("expected ',' or '}' in object, found " + found());
    }
  }
};

} // namespace

bool mamba3::parseJson(const std::string &text, JsonValue &out,
                       std::string &error) {
  JsonValue value;
  Parser parser(text);
  if (!parser.parseDocument(value, error))
    return false;
  out = std::move(value);
  return true;
}
