//===- JsonTest.cpp - The runtime's JSON reader and writer ----------------===//

#include "mamba3/Json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace mamba3;

namespace {

JsonValue parse(const std::string &text) {
  JsonValue v;
  std::string error;
  EXPECT_TRUE(parseJson(text, v, error)) << text << ": " << error;
  return v;
}

/// The error for `text`, which must not parse.
std::string parseError(const std::string &text) {
  JsonValue v = JsonValue::string("untouched");
  std::string error;
  EXPECT_FALSE(parseJson(text, v, error)) << text;
  EXPECT_TRUE(v.isString()) << "the output changed on failure: " << text;
  return error;
}

} // namespace

TEST(Json, ParsesEveryKind) {
  JsonValue v = parse(R"( {"n": null, "t": true, "f": false, "i": -12,
      "x": 1.5e3, "s": "hi", "a": [1, [2, {}], []], "o": {"k": {"d": 0.25}}} )");
  ASSERT_TRUE(v.isObject());
  EXPECT_TRUE(v.get("n")->isNull());
  EXPECT_TRUE(v.get("t")->asBool());
  EXPECT_FALSE(v.get("f")->asBool());
  EXPECT_EQ(v.get("i")->asInt(), -12);
  EXPECT_EQ(v.get("x")->asNumber(), 1500.0);
  EXPECT_EQ(v.get("s")->asString(), "hi");
  const JsonValue *a = v.get("a");
  ASSERT_TRUE(a->isArray());
  ASSERT_EQ(a->items().size(), 3u);
  EXPECT_EQ(a->items()[1].items()[0].asNumber(), 2.0);
  EXPECT_TRUE(a->items()[1].items()[1].isObject());
  EXPECT_TRUE(a->items()[2].items().empty());
  EXPECT_EQ(v.get("o")->get("k")->get("d")->asNumber(), 0.25);
  EXPECT_EQ(v.get("missing"), nullptr);
  EXPECT_EQ(v.get("s")->get("s"), nullptr) << "get on a non-object";
  // Members keep their order.
  EXPECT_EQ(v.members()[0].first, "n");
  EXPECT_EQ(v.members().back().first, "o");

  EXPECT_TRUE(parse("3").isNumber());
  EXPECT_TRUE(parse(" \"only a string\"\n").isString());
}

TEST(Json, Numbers) {
  EXPECT_EQ(parse("0").asNumber(), 0.0);
  EXPECT_TRUE(std::signbit(parse("-0").asNumber()));
  EXPECT_EQ(parse("0.1").asNumber(), 0.1);
  EXPECT_EQ(parse("-2.5E-3").asNumber(), -2.5e-3);
  EXPECT_EQ(parse("1e+2").asNumber(), 100.0);
  EXPECT_EQ(parse("12345678901234567").asNumber(), 12345678901234567.0);
  EXPECT_EQ(parse("4.9406564584124654e-324").asNumber(),
            std::numeric_limits<double>::denorm_min());
  // Out of range: an infinity or a zero, as strtod gives.
  EXPECT_EQ(parse("1e400").asNumber(), HUGE_VAL);
  EXPECT_EQ(parse("-1e400").asNumber(), -HUGE_VAL);
  EXPECT_EQ(parse(std::string(400, '9')).asNumber(), HUGE_VAL);
  EXPECT_EQ(parse("1e-400").asNumber(), 0.0);
  EXPECT_EQ(parse("0." + std::string(400, '0') + "1").asNumber(), 0.0);
}

TEST(Json, StringEscapes) {
  JsonValue v =
      parse(R"("q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20ac \ud83d\ude00")");
  EXPECT_EQ(v.asString(),
            "q\" b\\ s/ \b\f\n\r\t A\xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80");
  // Raw UTF-8 passes through.
  EXPECT_EQ(parse("\"\xc3\xa9\"").asString(), "\xc3\xa9");
}

TEST(Json, DumpRoundTrips) {
  JsonValue doc;
  doc.set("name", JsonValue::string("a \"quoted\"\n\x01 name"));
  doc.set("pi", JsonValue::number(3.141592653589793));
  doc.set("tenth", JsonValue::number(0.1));
  doc.set("tiny", JsonValue::number(1e-310));
  doc.set("int", JsonValue::number(-42));
  doc.set("flag", JsonValue::boolean(true));
  doc.set("none", JsonValue());
  JsonValue list = JsonValue::array();
  list.push(JsonValue::number(1));
  list.push(JsonValue::object());
  list.push(JsonValue::array());
  doc.set("list", list);
  doc.set("int", JsonValue::number(7)); // replaces, keeps its place

  EXPECT_EQ(doc.dump(0),
            R"({"name":"a \"quoted\"\n\u0001 name","pi":3.141592653589793,)"
            R"("tenth":0.1,"tiny":1e-310,"int":7,"flag":true,"none":null,)"
            R"("list":[1,{},[]]})");
  EXPECT_EQ(list.dump(2), "[\n  1,\n  {},\n  []\n]");

  for (int indent : {0, 2, 4}) {
    JsonValue back = parse(doc.dump(indent));
    EXPECT_EQ(back.dump(0), doc.dump(0)) << "indent " << indent;
    EXPECT_EQ(back.get("pi")->asNumber(), 3.141592653589793);
    EXPECT_EQ(back.get("tiny")->asNumber(), 1e-310);
    EXPECT_EQ(back.get("name")->asString(), "a \"quoted\"\n\x01 name");
  }
  // JSON has no NaN or infinity.
  EXPECT_EQ(JsonValue::number(std::nan("")).dump(), "null");
  EXPECT_EQ(JsonValue::number(HUGE_VAL).dump(), "null");
}

TEST(Json, SetAndPushOnNullBuildContainers) {
  JsonValue obj;
  obj.set("a", JsonValue::number(1));
  EXPECT_TRUE(obj.isObject());
  JsonValue arr;
  arr.push(JsonValue::number(1));
  EXPECT_TRUE(arr.isArray());
  JsonValue num = JsonValue::number(1);
  num.set("a", JsonValue());
  num.push(JsonValue());
  EXPECT_EQ(num.dump(), "1") << "a scalar stays a scalar";
}

TEST(Json, ErrorsGiveTheOffset) {
  struct Case {
    const char *text;
    const char *message;
  };
  const Case cases[] = {
      {"", "byte 0 (line 1, column 1): expected a value, found end of input"},
      {"{\"a\": 1,}", "byte 8 (line 1, column 9): expected a string key"},
      {"[1, 2", "byte 5 (line 1, column 6): expected ',' or ']' in array, "
                "found end of input"},
      {"{\"a\" 1}", "byte 5 (line 1, column 6): expected ':'"},
      {"{\"a\": 1 \"b\": 2}", "expected ',' or '}' in object, found '\"'"},
      {"[1]\n x", "byte 5 (line 2, column 2): unexpected 'x' after the JSON"},
      {"\"abc", "unterminated string (it starts at byte 0)"},
      {"[\"ab\\", "byte 5 (line 1, column 6): unterminated string (it starts "
                  "at byte 1)"},
      {"\"a\nb\"", "byte 2 (line 1, column 3): control character byte 0x0a"},
      {"\"\\x\"", "byte 1 (line 1, column 2): invalid escape '\\x'"},
      {"\"\\u12g4\"", "expected 4 hex digits"},
      {"\"\\udc00\"", "unpaired low surrogate"},
      {"\"\\ud800x\"", "high surrogate not followed"},
      {"01", "byte 1 (line 1, column 2): unexpected '1' after the JSON value"},
      {"1.", "expected a digit after '.'"},
      {"-", "expected a digit in number"},
      {"1e+", "expected a digit in the exponent"},
      {"tru", "expected 'true'"},
      {"nul", "expected 'null'"},
      {"NaN", "expected a value, found 'N'"},
      {"{\"a\": 1, \"a\": 2}",
       "byte 9 (line 1, column 10): duplicate key \"a\""},
      {"[1,\r\n  \xff]", "byte 7 (line 2, column 3): expected a value, "
                         "found byte 0xff"},
  };
  for (const Case &c : cases) {
    std::string error = parseError(c.text);
    EXPECT_NE(error.find(c.message), std::string::npos)
        << "text: " << c.text << "\nerror: " << error;
    EXPECT_EQ(error.rfind("JSON error at byte ", 0), 0u) << error;
  }
}

TEST(Json, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  std::string error = parseError(deep);
  EXPECT_NE(error.find("nesting deeper than"), std::string::npos) << error;
  // Reasonable depth is fine.
  parse(std::string(100, '[') + std::string(100, ']'));
}
