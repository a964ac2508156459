// GBNF parser (sampling/grammar/gbnf_parser.h) and the grammar builder's
// desugaring and checks, through the strings each grammar accepts.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "grammar_test_util.h"
#include "sampling/grammar/gbnf_parser.h"
#include "sampling/grammar/utf8_ranges.h"

namespace rg::test {
namespace {

// Expects each (text, match) pair under one grammar.
void ExpectMatches(std::string_view gbnf, const std::vector<std::pair<std::string, Match>>& cases) {
  const auto g = Gbnf(gbnf);
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(MatchName(MatchText(g, text)), std::string(MatchName(want)))
        << "grammar: " << gbnf << "\ntext: '" << text << "'";
  }
}

constexpr Match kNo = Match::kRejected, kPre = Match::kPrefix, kYes = Match::kComplete;

TEST(GbnfTest, LiteralsSequencesAndAlternatives) {
  ExpectMatches(R"(root ::= "abc")",
                {{"", kPre}, {"ab", kPre}, {"abc", kYes}, {"abd", kNo}, {"abcd", kNo}});
  ExpectMatches(R"(root ::= ("a" | "bc") "d" | "x")",
                {{"ad", kYes}, {"bcd", kYes}, {"x", kYes}, {"bd", kNo}, {"xd", kNo}});
  // Forward references, rules in any order, an empty alternative.
  ExpectMatches("root ::= item item\nitem ::= \"a\" | \"\"",
                {{"", kYes}, {"a", kYes}, {"aa", kYes}, {"aaa", kNo}});
}

TEST(GbnfTest, Repetition) {
  ExpectMatches(R"(root ::= "a"*)", {{"", kYes}, {"aaaa", kYes}, {"ab", kNo}});
  ExpectMatches(R"(root ::= "ab"+)", {{"", kPre}, {"ab", kYes}, {"aba", kPre}, {"abab", kYes}});
  ExpectMatches(R"(root ::= "a"? "b")", {{"b", kYes}, {"ab", kYes}, {"aab", kNo}});
  ExpectMatches(R"(root ::= "a"{3})", {{"aa", kPre}, {"aaa", kYes}, {"aaaa", kNo}});
  ExpectMatches(R"(root ::= "a"{2,})", {{"a", kPre}, {"aa", kYes}, {"aaaaaaa", kYes}});
  ExpectMatches(R"(root ::= "a"{1,3} "b")",
                {{"b", kNo}, {"ab", kYes}, {"aaab", kYes}, {"aaaab", kNo}});
  ExpectMatches(R"(root ::= "a"{0,2})", {{"", kYes}, {"aa", kYes}, {"aaa", kNo}});
  ExpectMatches(R"(root ::= ("x" | "y"){ 2 , 3 })",
                {{"x", kPre}, {"xy", kYes}, {"yyx", kYes}, {"xyxy", kNo}});
  // Postfix operators stack: ("a"{2})* = an even number of a's.
  ExpectMatches(R"(root ::= "a"{2}*)", {{"", kYes}, {"a", kPre}, {"aa", kYes}, {"aaaa", kYes}});
}

TEST(GbnfTest, CharacterClasses) {
  ExpectMatches(R"(root ::= [a-cx]+)", {{"abcx", kYes}, {"d", kNo}, {"", kPre}});
  ExpectMatches(R"(root ::= [^a-c]+)", {{"xyz", kYes}, {"xaz", kNo}, {"\xC3\xA9", kYes}});
  ExpectMatches(R"(root ::= [\x41-\x43\]\-]+)", {{"ABC]-", kYes}, {"D", kNo}});
  ExpectMatches(R"(root ::= [-a]+)", {{"-a-", kYes}});  // '-' first is literal
  ExpectMatches(R"(root ::= .)", {{"a", kYes}, {"\xE2\x98\x83", kYes}, {"ab", kNo}});
  ExpectMatches(R"(root ::= [\t\n\r ])", {{"\t", kYes}, {"\n", kYes}, {"x", kNo}});
}

TEST(GbnfTest, Utf8LiteralsAndClassesWorkByteByByte) {
  // é = C3 A9, ☃ = E2 98 83, 😀 = F0 9F 98 80.
  ExpectMatches(R"(root ::= "é" "\u2603" "\U0001F600")",
                {{"\xC3", kPre}, {"é☃😀", kYes}, {"\xC3\xA9\xE2\x98", kPre}, {"e", kNo}});
  ExpectMatches(R"(root ::= [α-ω]+)",
                {{"αβω", kYes}, {"\xCE", kPre}, {"a", kNo}, {"\xCE\x41", kNo}});
  // Negated classes never accept invalid UTF-8: a lone continuation byte,
  // an overlong encoding, a surrogate, a code point above U+10FFFF.
  ExpectMatches(R"(root ::= [^"]*)", {{"\x80", kNo},
                                      {"\xC0\xAF", kNo},
                                      {"\xED\xA0\x80", kNo},
                                      {"\xF4\x90\x80\x80", kNo},
                                      {"\xF4\x8F\xBF\xBF", kYes},
                                      {"\xEF\xBF\xBD", kYes}});
}

TEST(GbnfTest, CommentsWhitespaceAndMultiLineRules) {
  ExpectMatches(R"(
# a comment line
root ::=   # comment after ::=
    "a"
    b     # rules may span lines
  | "c"
b ::= "b"  # the next `name ::=` starts a new rule
)",
                {{"ab", kYes}, {"c", kYes}, {"a", kPre}});
  // A real llama.cpp grammar (json.gbnf style).
  ExpectMatches(R"(root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws
array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws
string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}
)",
                {{R"({"a": [1, 2.5, "x\n", true, null], "b": {}})", kYes},
                 {R"({"a": })", kNo},
                 {R"({"a)", kPre}});
}

// Each malformed grammar gives a one-line error containing `want`.
TEST(GbnfTest, ErrorsNameTheProblemAndPosition) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(root ::= "abc)", "gbnf:1:10: unterminated string literal"},
      {R"(root ::= foo)", "gbnf:1:10: undefined rule 'foo'"},
      {R"(item ::= "a")", "no 'root' rule"},
      {"", "no 'root' rule"},
      {R"(root ::= root "a" | "b")", "rule 'root' is left-recursive (root -> root)"},
      {"root ::= a\na ::= b \"x\"\nb ::= a? \"y\"", "is left-recursive"},
      {R"(root ::= ("a"?)*)", "gbnf:1:10: the repeated expression can match the empty string"},
      {"root ::= \"a\" a\na ::= \"x\" a", "gbnf:2:1: rule 'a' can never complete"},
      {R"(root ::= [z-a])", "gbnf:1:11: character range is reversed"},
      {R"(root ::= [])", "gbnf:1:10: character class matches no character"},
      {R"(root ::= [abc)", "gbnf:1:10: unterminated character class"},
      {R"(root ::= "a"{3,2})", "has max < min"},
      {R"(root ::= "a"{1001})", "repetition count above the limit of 1000"},
      {R"(root ::= "a"{2)", "expected '}'"},
      {R"(root ::= "a"{x})", "expected a number"},
      {R"(root = "a")", "gbnf:1:6: found '=' after rule name 'root', expected '::='"},
      {R"(::= "a")", "gbnf:1:1: found ':', expected a rule name"},
      {R"(root ::= "\q")", "gbnf:1:11: unknown escape '\\q'"},
      {R"(root ::= "\x4")", "expected 2 hex digits"},
      {R"(root ::= "\uD800")", "surrogate"},
      {R"(root ::= ( "a")", "expected ')' to close the '(' at 1:10"},
      {R"(root ::= "a" ))", "gbnf:1:14: found ')' without a matching '('"},
      {R"(root ::= <foo>)", "token references <...> are not supported"},
      {R"(root ::= 'a')", "expected a double-quoted literal"},
      {R"(root ::= "a" | @)", "gbnf:1:16: found '@', expected a literal"},
      {"root ::= \"a\"\nroot ::= \"b\"", "gbnf:2:1: rule 'root' is defined twice"},
      {"root ::= \"\xC3\"", "invalid UTF-8"},
      {"root ::= x\n\n  x ::= \"a\" y", "gbnf:3:13: undefined rule 'y'"},
      {std::string("root ::= ") + std::string(150, '(') + "\"a\"" + std::string(150, ')'),
       "parentheses nested deeper than 100"},
  };
  for (const auto& [gbnf, want] : cases) {
    const std::string err = ErrorOf([&] { ParseGbnf(gbnf); });
    EXPECT_NE(err.find(want), std::string::npos) << "grammar: " << gbnf << "\nerror: " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "multi-line error: " << err;
  }
}

TEST(GbnfTest, SizeLimitsBoundExpansion) {
  // Repetition refers to its item, never copies it: 10^9 a's in 3000 elements.
  const auto g = Gbnf(R"(root ::= (("a"{1000}){1000}){1000})");
  EXPECT_LT(g->elements().size(), 4000u);
  // Many large repetitions do add up: refused at the element limit.
  std::string big = "root ::=";
  for (int i = 0; i < 1100; ++i) big += " \"a\"{1000}";
  const std::string err = ErrorOf([&] { ParseGbnf(big); });
  EXPECT_NE(err.find("grammar too large: more than 1048576 elements"), std::string::npos) << err;
  EXPECT_NE(ErrorOf([] { ParseGbnf(std::string(kGbnfMaxBytes + 1, ' ')); }).find("above the limit"),
            std::string::npos);
}

TEST(GbnfTest, ToStringListsByteLevelRules) {
  const auto g = Gbnf(R"(root ::= "a" [0-9]* | "é")");
  const std::string s = g->ToString();
  EXPECT_NE(s.find("root ::= [a] root_"), std::string::npos) << s;
  EXPECT_NE(s.find("[0-9]"), std::string::npos) << s;
  EXPECT_NE(s.find("[\\xC3] [\\xA9]"), std::string::npos) << s;
}

// ---- utf8_ranges: exhaustive over every code point.

TEST(Utf8RangesTest, SequencesMatchExactlyTheEncodingsOfTheSet) {
  const std::vector<std::vector<CodepointRange>> sets = {
      {{0, kMaxCodepoint}},
      {{'a', 'z'}, {0x3B1, 0x3C9}},
      {{0x7F, 0x80}, {0x7FF, 0x800}, {0xFFFF, 0x10000}, {0xD7FF, 0xE000}},
      {{0x123, 0x4567}, {0x10FFF0, 0x10FFFF}},
  };
  for (const auto& raw : sets) {
    const auto ranges = NormalizeRanges(raw);
    const auto seqs = Utf8Sequences(ranges);
    for (uint32_t cp = 0; cp <= kMaxCodepoint; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      bool in_set = false;
      for (const auto& r : raw) in_set = in_set || (cp >= r.lo && cp <= r.hi);
      std::string enc;
      AppendUtf8(cp, &enc);
      int hits = 0;
      for (const Utf8Sequence& s : seqs) {
        bool ok = int(enc.size()) == s.len;
        for (int k = 0; ok && k < s.len; ++k) {
          ok = uint8_t(enc[k]) >= s.lo[k] && uint8_t(enc[k]) <= s.hi[k];
        }
        hits += ok;
      }
      ASSERT_EQ(hits, in_set ? 1 : 0) << "code point 0x" << std::hex << cp;
    }
  }
  // The complement of a set and the set cover every valid code point once.
  const auto abc = NormalizeRanges({{'a', 'c'}, {0xE000, 0xE000}});
  const auto rest = ComplementRanges(abc);
  uint64_t total = 0;
  for (const auto* rs : {&abc, &rest}) {
    for (const auto& r : *rs) {
      total += r.hi - r.lo + 1;
      if (r.lo < 0xD800 && r.hi > 0xDFFF) total -= 0x800;  // a span over the surrogate gap
    }
  }
  EXPECT_EQ(total, uint64_t(kMaxCodepoint + 1 - 0x800));
}

}  // namespace
}  // namespace rg::test
