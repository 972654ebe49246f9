//===- Json.h - A small JSON reader and writer -------------------*- C++ -*-===//
//
// The runtime must build without LLVM, so it carries its own JSON value type
// for golden-case descriptions and bundle manifests.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_JSON_H
#define MAMBA3_JSON_H

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mamba3 {

class JsonValue {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  JsonValue() = default;
  static JsonValue boolean(bool b);
  static JsonValue number(double d);
  static JsonValue string(std::string s);
  static JsonValue array();
  static JsonValue object();

  Kind kind() const { return k; }
  bool isNull() const { return k == Kind::Null; }
  bool isObject() const { return k == Kind::Object; }
  bool isArray() const { return k == Kind::Array; }
  bool isNumber() const { return k == Kind::Number; }
  bool isString() const { return k == Kind::String; }
  bool isBool() const { return k == Kind::Bool; }

  bool asBool() const { return b; }
  double asNumber() const { return num; }
  /// The number truncated toward zero, saturated to int64 (NaN: 0): a
  /// double past 2^63 has no int64, and converting it would be undefined.
  int64_t asInt() const {
    if (!(num == num))
      return 0;
    if (num >= 9223372036854775807.0)
      return INT64_MAX;
    if (num <= -9223372036854775808.0)
      return INT64_MIN;
    return static_cast<int64_t>(num);
  }
  const std::string &asString() const { return str; }
  const std::vector<JsonValue> &items() const { return arr; }
  const std::vector<std::pair<std::string, JsonValue>> &members() const {
    return obj;
  }

  /// Member lookup; nullptr when absent or when this is not an object.
  const JsonValue *get(const std::string &key) const;
  void set(const std::string &key, JsonValue v);
  void push(JsonValue v);

  std::string dump(int indent = 2) const;

private:
  Kind k = Kind::Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<JsonValue> arr;
  std::vector<std::pair<std::string, JsonValue>> obj; // keeps insertion order
};

/// Parses `text`; on failure returns false and sets `error` with the byte
/// offset and what was expected.
bool parseJson(const std::string &text, JsonValue &out, std::string &error);

} // namespace mamba3

#endif // MAMBA3_JSON_H
