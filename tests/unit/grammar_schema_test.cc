// JSON-Schema compiler (sampling/grammar/json_schema.h): each keyword through
// the documents its grammar accepts, and the errors for what it refuses.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "grammar_test_util.h"
#include "sampling/grammar/int_range.h"

namespace rg::test {
namespace {

constexpr Match kNo = Match::kRejected, kPre = Match::kPrefix, kYes = Match::kComplete;

void ExpectDocs(std::string_view schema, const std::vector<std::pair<std::string, Match>>& docs) {
  const auto g = Schema(schema);
  for (const auto& [doc, want] : docs) {
    EXPECT_EQ(MatchName(MatchText(g, doc)), std::string(MatchName(want)))
        << "schema: " << schema << "\ndoc: " << doc;
  }
}

TEST(JsonSchemaTest, Scalars) {
  // clang-format off
  ExpectDocs(R"({"type":"string"})", {
      {R"("hi")", kYes}, {R"("a\"b\\c\n\u00e9\u2603")", kYes}, {R"("é😀")", kYes},
      {"\"a\nb\"", kNo},     // raw control character
      {R"("\ud800")", kNo},  // \u never encodes a surrogate
      {R"("\x")", kNo}, {"\"abc", kPre}, {"1", kNo}});
  ExpectDocs(R"({"type":"integer"})", {
      {"0", kYes}, {"-12", kYes}, {"1234567890123456", kYes}, {"12345678901234567", kNo},
      {"01", kNo}, {"1.5", kNo}, {"-", kPre}, {"-0", kYes}});
  ExpectDocs(R"({"type":"number"})", {
      {"0", kYes}, {"-1.25", kYes}, {"6.02e23", kYes}, {"1E-7", kYes}, {"1.", kPre},
      {".5", kNo}, {"1e123", kNo}, {"1e-99", kYes}, {"NaN", kNo}});
  ExpectDocs(R"({"type":"boolean"})", {{"true", kYes}, {"false", kYes}, {"tru", kPre}, {"1", kNo}});
  ExpectDocs(R"({"type":"null"})", {{"null", kYes}, {"nul", kPre}, {"\"null\"", kNo}});
  ExpectDocs(R"({"type":["integer","null"]})", {{"3", kYes}, {"null", kYes}, {"true", kNo}});
  // clang-format on
}

TEST(JsonSchemaTest, WhitespaceAndTheEndOfTheValue) {
  // Leading whitespace is allowed; the value ends as soon as it closes (no
  // trailing whitespace); between tokens: one space, or a newline and up to
  // 40 spaces / tabs.
  ExpectDocs(R"({"type":"object","properties":{"a":{"type":"integer"}}})",
             {{R"({"a":1})", kYes},
              {" {\"a\":1}", kYes},
              {"{\"a\":1} ", kNo},
              {"{\n  \"a\": 1\n}", kYes},
              {"{\n\t\"a\" : 1 }", kYes},
              {"{  \"a\":1}", kNo},
              {"{\n" + std::string(40, ' ') + "\"a\":1}", kYes},
              {"{\n" + std::string(41, ' ') + "\"a\":1}", kNo}});
}

TEST(JsonSchemaTest, EnumAndConst) {
  ExpectDocs(R"({"enum":["red","green",3,null,{"k":[1,true]}]})", {{R"("red")", kYes},
                                                                   {R"("green")", kYes},
                                                                   {"3", kYes},
                                                                   {"null", kYes},
                                                                   {R"({"k":[1,true]})", kYes},
                                                                   {R"("blue")", kNo},
                                                                   {"4", kNo}});
  ExpectDocs(R"({"const":"x\"y"})",
             {{R"("x\"y")", kYes}, {R"("x)", kPre}, {R"("x")", kNo}, {R"("y")", kNo}});
}

TEST(JsonSchemaTest, PropertiesInSchemaOrderRequiredAndOptional) {
  const char* schema = R"({"type":"object","properties":{
      "b":{"type":"integer"},"a":{"type":"string"},"c":{"type":"boolean"}},"required":["a"]})";
  ExpectDocs(schema, {
                         {R"({"a":"x"})", kYes},
                         {R"({"b":1,"a":"x"})", kYes},
                         {R"({"b":1,"a":"x","c":true})", kYes},
                         {R"({"a":"x","c":false})", kYes},
                         {R"({"a":"x","b":1})", kNo},  // schema order: b before a
                         {R"({"b":1)", kPre},          // a is required
                         {R"({"b":1})", kNo},
                         {R"({"b":1,"c":true})", kNo},
                         {R"({})", kNo},
                         {R"({"a":"x","a":"y"})", kNo},  // no repeats
                         {R"({"d":1})", kNo},            // additionalProperties absent: only listed
                     });
  // All optional: {} is fine; the commas only go between present members.
  ExpectDocs(R"({"properties":{"x":{"type":"integer"},"y":{"type":"integer"}}})",
             {{"{}", kYes},
              {R"({"y":2})", kYes},
              {R"({"x":1,"y":2})", kYes},
              {R"({,"y":2})", kNo},
              {R"({"x":1,})", kNo}});
  // A required name missing from properties must appear, with any value.
  ExpectDocs(R"({"type":"object","properties":{"x":{"type":"integer"}},"required":["z"]})",
             {{R"({"z":[1]})", kYes},
              {R"({"x":1,"z":"s"})", kYes},
              {R"({"x":1)", kPre},
              {R"({"x":1})", kNo}});
}

TEST(JsonSchemaTest, AdditionalProperties) {
  ExpectDocs(
      R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false})",
      {{R"({"a":1})", kYes}, {R"({"b":1})", kNo}});
  // true: other keys after the listed ones, never a listed name again.
  ExpectDocs(R"({"type":"object","properties":{"a":{"type":"integer"},"ab":{"type":"null"}},
                 "additionalProperties":true})",
             {{R"({"a":1,"x":[true]})", kYes},
              {R"({"x":1,"y":"z"})", kYes},
              {R"({"b":{}})", kYes},
              {R"({"a":1,"a":2})", kNo},
              {R"({"ab":null,"ab":1})", kNo},
              {R"({"abc":1})", kYes},
              {R"({"":1})", kYes},
              {R"({"a":1,"ab":null,"a2":0})", kYes}});
  // A schema for the other values.
  ExpectDocs(R"({"type":"object","additionalProperties":{"type":"integer"}})",
             {{R"({"x":1,"y":2})", kYes}, {R"({"x":"s"})", kNo}, {"{}", kYes}});
  // No properties keyword: any object.
  ExpectDocs(R"({"type":"object"})",
             {{R"({"x":{"y":[1,{"z":null}]},"w":"v"})", kYes}, {"[]", kNo}, {"{}", kYes}});
}

TEST(JsonSchemaTest, Arrays) {
  ExpectDocs(R"({"type":"array","items":{"type":"integer"}})",
             {{"[]", kYes}, {"[1, 2,3]", kYes}, {"[1,]", kNo}, {"[\"a\"]", kNo}});
  ExpectDocs(R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3})",
             {{"[]", kNo},
              {"[1", kPre},
              {"[1]", kNo},
              {"[1,2]", kYes},
              {"[1,2,3]", kYes},
              {"[1,2,3,4]", kNo}});
  ExpectDocs(R"({"type":"array","minItems":1})", {{"[]", kNo}, {"[null, {}]", kYes}});
  ExpectDocs(R"({"type":"array","maxItems":0})", {{"[]", kYes}, {"[1]", kNo}});
  ExpectDocs(R"({"type":"array","items":false})", {{"[ ]", kYes}, {"[1]", kNo}});
  ExpectDocs(R"({"type":"array","items":{"type":"array","items":{"enum":[1,2]},"maxItems":1}})",
             {{"[[1],[],[2]]", kYes}, {"[[1,2]]", kNo}});
}

TEST(JsonSchemaTest, StringLengthCountsCharacters) {
  ExpectDocs(R"({"type":"string","minLength":2,"maxLength":3})", {{R"("a")", kNo},
                                                                  {R"("ab")", kYes},
                                                                  {R"("é😀")", kYes},
                                                                  {R"("\n\u0041x")", kYes},
                                                                  {R"("abcd")", kNo}});
}

TEST(JsonSchemaTest, IntegerBounds) {
  ExpectDocs(R"({"type":"integer","minimum":0,"maximum":120})",
             {{"0", kYes}, {"120", kYes}, {"121", kNo}, {"-1", kNo}, {"99", kYes}, {"007", kNo}});
  ExpectDocs(R"({"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":2.5})",
             {{"-3", kNo}, {"-2", kYes}, {"2", kYes}, {"3", kNo}});
  ExpectDocs(R"({"type":"integer","minimum":10})",
             {{"9", kPre}, {"10", kYes}, {"9999999999999999", kYes}, {"-1", kNo}, {"0", kNo}});
}

// IntRangeGbnf against the definition, for many ranges over [-1500, 1500].
TEST(JsonSchemaTest, IntRangeMatchesExactlyTheRange) {
  const std::vector<std::pair<std::optional<int64_t>, std::optional<int64_t>>> ranges = {
      {0, 0},
      {0, 9},
      {1, 10},
      {-5, 5},
      {7, 1234},
      {-1234, -7},
      {99, 1001},
      {100, 999},
      {-1000, 1000},
      {15, 15},
      {-15, -15},
      {std::nullopt, -3},
      {42, std::nullopt},
      {std::nullopt, 77},
      {-77, std::nullopt},
      {101, 199},
      {109, 1190}};
  for (const auto& [lo, hi] : ranges) {
    const std::string expr = IntRangeGbnf(lo, hi);
    const auto g = Gbnf("root ::= " + expr);
    for (int64_t v = -1500; v <= 1500; ++v) {
      const bool want = (!lo || v >= *lo) && (!hi || v <= *hi);
      ASSERT_EQ(MatchText(g, std::to_string(v)) == Match::kComplete, want)
          << "range [" << (lo ? std::to_string(*lo) : "-inf") << ", "
          << (hi ? std::to_string(*hi) : "inf") << "] value " << v << "\n"
          << expr;
    }
    EXPECT_NE(MatchText(g, "-0"), Match::kComplete);
    EXPECT_EQ(MatchText(g, "00"), Match::kRejected);
  }
  EXPECT_EQ(IntRangeGbnf(5, 4), "");
}

TEST(JsonSchemaTest, AnyOfOneOfAllOf) {
  ExpectDocs(
      R"({"anyOf":[{"type":"string"},{"type":"object","properties":{"n":{"type":"null"}}}]})",
      {{R"("s")", kYes}, {R"({"n":null})", kYes}, {"1", kNo}});
  ExpectDocs(R"({"oneOf":[{"const":1},{"const":2}]})", {{"1", kYes}, {"2", kYes}, {"3", kNo}});
  ExpectDocs(R"({"allOf":[{"type":"boolean"}],"description":"annotations are fine"})",
             {{"true", kYes}, {"1", kNo}});
}

TEST(JsonSchemaTest, RefsIncludingRecursion) {
  ExpectDocs(
      R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}},
                 "type":"array","items":{"$ref":"#/$defs/pt"}})",
      {{R"([{"x":1},{"x":2}])", kYes}, {R"([{}])", kNo}});
  ExpectDocs(
      R"({"definitions":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/definitions/s"}}})",
      {{R"({"a":"b"})", kYes}, {R"({"a":1})", kNo}});
  // A recursive tree.
  ExpectDocs(R"({"type":"object","properties":{"v":{"type":"integer"},
                 "kids":{"type":"array","items":{"$ref":"#"}}},"required":["v"]})",
             {{R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4,"kids":[]}]}]})", kYes},
              {R"({"v":1,"kids":[{}]})", kNo}});
}

TEST(JsonSchemaTest, AnyValueAndJsonObjectMode) {
  ExpectDocs("{}", {{"1", kYes}, {R"({"a":[null]})", kYes}, {"\"s\"", kYes}, {"x", kNo}});
  ExpectDocs("true", {{"[1,2]", kYes}});
  ExpectDocs(R"({"title":"t","description":"d","format":"date-time","x-custom":1,"type":"string"})",
             {{R"("2024")", kYes}});
  const auto g = std::make_shared<const Grammar>(JsonObjectGrammar());
  EXPECT_EQ(MatchText(g, R"({"a": {"b": [1, "c", null, true, 1.5e3]}})"), kYes);
  EXPECT_EQ(MatchText(g, "[1]"), kNo);
  EXPECT_EQ(MatchText(g, "\"s\""), kNo);
}

TEST(JsonSchemaTest, ErrorsNameTheKeywordAndPath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"object","properties":{"name":{"type":"string","pattern":"^a"}}})",
       "unsupported keyword 'pattern' (supported: type, enum"},
      {R"({"type":"object","properties":{"name":{"type":"string","pattern":"^a"}}})",
       "at #/properties/name"},
      {R"({"type":"number","minimum":0})", "unsupported keyword 'minimum' on type number"},
      {R"({"type":"array","prefixItems":[{}]})", "unsupported keyword 'prefixItems' (supported"},
      {R"({"type":"array","uniqueItems":true})", "unsupported keyword 'uniqueItems'"},
      {R"({"type":"array","items":[{}]})",
       "'items' as an array (tuple form) is not supported at #/items"},
      {R"({"type":"array","maxItems":5000})",
       "'maxItems' is 5000, above the supported limit of 1000 at #/maxItems"},
      {R"({"type":"array","minItems":-1})", "'minItems' must be a non-negative integer, found -1"},
      {R"({"type":"array","minItems":3,"maxItems":2})", "maxItems 2 < minItems 3"},
      {R"({"type":"string","maxLength":"5"})", "'maxLength' must be a non-negative integer"},
      {R"({"type":"strng"})", "unknown type 'strng' (expected string, number"},
      {R"({"type":7})", "'type' must be a string or a non-empty array of strings at #/type"},
      {R"({"type":["string","string"]})", "type 'string' is listed twice"},
      {R"({"$ref":"#/$defs/missing"})",
       "$ref '#/$defs/missing' does not resolve in this schema at #/$ref"},
      {R"({"$ref":"http://example.com/s.json"})", "only '#' and '#/...' local references"},
      {R"({"$ref":"#/$defs/a","type":"string","$defs":{"a":{}}})",
       "'type' next to '$ref' is not supported"},
      {R"({"anyOf":[{"type":"string"}],"type":"string"})", "'type' next to 'anyOf'"},
      {R"({"anyOf":[]})", "'anyOf' must be a non-empty array of schemas at #/anyOf"},
      {R"({"allOf":[{},{}]})", "'allOf' with more than one schema is not supported"},
      {R"({"enum":[]})", "'enum' must be a non-empty array at #/enum"},
      {R"({"properties":{"a":false}})", "schema 'false' matches no value at #/properties/a"},
      {R"({"properties":{"a/b~c":{"not":{}}}})", "unsupported keyword 'not' (supported"},
      {R"({"properties":{"a/b~c":{"not":{}}}})", "at #/properties/a~1b~0c"},
      {R"({"properties":[1]})", "'properties' must be an object at #/properties"},
      {R"({"required":"a"})", "'required' must be an array of strings at #/required"},
      {R"({"additionalProperties":3})", "'additionalProperties' must be a boolean or a schema"},
      {R"({"type":"integer","minimum":"0"})", "'minimum' must be a number, found string"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "satisfies the minimum/maximum bounds"},
      {R"({"type":"integer","exclusiveMinimum":true})", "'exclusiveMinimum' must be a number"},
      {R"({"properties":{"a":7}})",
       "expected a schema (an object or true/false), found number at #/properties/a"},
      {R"({"type":"object",)", "json_schema: the schema is not valid JSON"},
      {R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"})",
       "json_schema: the schema compiles to an unusable grammar: "},
  };
  for (const auto& [schema, want] : cases) {
    const std::string err = ErrorOf([&] { CompileJsonSchemaText(schema); });
    EXPECT_NE(err.find(want), std::string::npos) << "schema: " << schema << "\nerror: " << err;
    EXPECT_EQ(err.rfind("json_schema: ", 0), 0u) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "multi-line error: " << err;
  }
  // Depth and size limits.
  std::string deep = "{}";
  for (int i = 0; i < kSchemaMaxDepth + 2; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_NE(ErrorOf([&] { CompileJsonSchemaText(deep); }).find("nested deeper than 64 levels"),
            std::string::npos);
  std::string wide = R"({"anyOf":[)";
  for (int i = 0; i <= kSchemaMaxNodes; ++i) wide += std::string(i ? "," : "") + "{}";
  wide += "]}";
  EXPECT_NE(ErrorOf([&] { CompileJsonSchemaText(wide); }).find("more than 10000 subschemas"),
            std::string::npos);
}

TEST(JsonSchemaTest, GbnfTextIsReadable) {
  const std::string gbnf = JsonSchemaToGbnf(nlohmann::ordered_json::parse(
      R"({"type":"object","properties":{"name":{"type":"string"}},"required":["name"]})"));
  EXPECT_EQ(gbnf.rfind("root ::= ws value\n", 0), 0u) << gbnf;
  EXPECT_NE(gbnf.find(R"(value-name-kv ::= "\"name\"" ws ":" ws json-string ws)"),
            std::string::npos)
      << gbnf;
  EXPECT_EQ(gbnf.find("json-number"), std::string::npos) << "unused rules are left out\n" << gbnf;
}

}  // namespace
}  // namespace rg::test
