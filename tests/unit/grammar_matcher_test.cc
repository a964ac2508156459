// GrammarMatcher, LazyDfa and the token mask on a small hand-made
// vocabulary: multi-byte UTF-8 tokens, byte-fallback tokens, tokens spanning
// several terminals ("},"), duplicates, special / end / empty tokens. The
// oracle is an independent, naive pushdown recognizer (explicit stacks, no
// interning, no tail calls, no caching) scanning every token.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "grammar_test_util.h"
#include "sampling/grammar/matcher.h"
#include "sampling/grammar/token_mask.h"
#include "sampling/grammar/token_trie.h"

namespace rg::test {
namespace {

// ---- the naive oracle

class NaiveRecognizer {
 public:
  explicit NaiveRecognizer(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
    for (uint32_t alt : g_->rules()[g_->root()].alts) Close({alt}, &stacks_, &accept_);
  }
  // Positions, bottom first; the top is a byte terminal.
  using Stack = std::vector<uint32_t>;

  bool Step(uint8_t b) {
    std::set<Stack> next;
    bool accept = false;
    for (const Stack& s : stacks_) {
      const GrammarElement& e = g_->elements()[s.back()];
      if (!g_->byte_set(e.arg).Test(b)) continue;
      Stack t = s;
      ++t.back();
      Close(std::move(t), &next, &accept);
    }
    stacks_ = std::move(next);
    accept_ = accept;
    return !stacks_.empty() || accept_;
  }
  bool Accepts(std::string_view bytes) const {
    NaiveRecognizer copy = *this;
    for (char c : bytes) {
      if (!copy.Step(uint8_t(c))) return false;
    }
    return true;
  }
  bool can_end() const { return accept_; }
  bool can_continue() const { return !stacks_.empty(); }

 private:
  void Close(Stack s, std::set<Stack>* out, bool* accept) const {
    const GrammarElement& e = g_->elements()[s.back()];
    switch (e.kind) {
      case GrammarElemKind::kBytes: out->insert(std::move(s)); return;
      case GrammarElemKind::kEnd:
        s.pop_back();
        if (s.empty()) {
          *accept = true;
          return;
        }
        ++s.back();  // continue after the rule reference
        Close(std::move(s), out, accept);
        return;
      case GrammarElemKind::kRule:
        for (uint32_t alt : g_->rules()[e.arg].alts) {
          Stack t = s;
          t.push_back(alt);
          Close(std::move(t), out, accept);
        }
        return;
    }
  }

  std::shared_ptr<const Grammar> g_;
  std::set<Stack> stacks_;
  bool accept_ = false;
};

// ---- a small vocabulary

TokenVocab SmallVocab() {
  TokenVocab v;
  const auto text = [&](std::string s) {
    v.bytes.push_back(std::move(s));
    v.kinds.push_back(TokenKind::kText);
  };
  const auto other = [&](TokenKind k) {
    v.bytes.emplace_back();
    v.kinds.push_back(k);
  };
  other(TokenKind::kSpecial);  // 0 <pad>
  other(TokenKind::kEnd);      // 1 <eos>
  other(TokenKind::kSpecial);  // 2 <bos>
  other(TokenKind::kEnd);      // 3 <end_of_turn>
  text("");                    // 4 an empty text token: never allowed
  for (const char* s :
       {"{",    "}",     "[",    "]",  "\"",  ":",   ",",   " ",      "\n",     "\n  ", "\t",
        "-",    ".",     "e",    "E",  "+",   "0",   "1",   "2",      "9",      "12",   "345",
        "a",    "b",     "x",    "ab", "\\",  "\\n", "\\u", "00e9",   "u",      "d",    "8",
        "true", "false", "null", "tr", "\"}", "},",  "\":", "\", \"", "\":\"",  "}}",   "]]",
        "[{",   "\"a\"", "é",    "😀",  "☃",   "a\"", "1,",  "{\"",    "\"x\":", "ue"}) {
    text(s);
  }
  // Byte-fallback tokens: single bytes, some duplicating text tokens.
  for (int b :
       {0xC3, 0xA9, 0xE2, 0x98, 0x83, 0xF0, 0x9F, 0x80, 0xFF, int('a'), int('"'), int('{')}) {
    text(std::string(1, char(b)));
  }
  return v;
}

struct Fixture {
  std::shared_ptr<const TokenTrie> trie = std::make_shared<const TokenTrie>(SmallVocab());
};

// Every text token with exactly these bytes (text tokens first, then byte fallback).
std::vector<int> Ids(const TokenTrie& trie, std::string_view bytes) {
  std::vector<int> ids;
  for (int t = 0; t < trie.vocab_size(); ++t) {
    if (trie.kind(t) == TokenKind::kText && trie.bytes(t) == bytes) ids.push_back(t);
  }
  EXPECT_FALSE(ids.empty()) << "no token '" << bytes << "'";
  return ids.empty() ? std::vector<int>{0} : ids;
}

// The oracle's mask for the naive state.
std::vector<bool> NaiveMask(const NaiveRecognizer& r, const TokenTrie& trie) {
  std::vector<bool> allowed(size_t(trie.vocab_size()), false);
  for (int t = 0; t < trie.vocab_size(); ++t) {
    switch (trie.kind(t)) {
      case TokenKind::kSpecial: break;
      case TokenKind::kEnd: allowed[size_t(t)] = r.can_end(); break;
      case TokenKind::kText:
        allowed[size_t(t)] = !trie.bytes(t).empty() && r.Accepts(trie.bytes(t));
        break;
    }
  }
  return allowed;
}

bool Bit(const uint64_t* bits, int t) { return (bits[t >> 6] >> (t & 63)) & 1; }

// Random walks under the mask; at every step the matcher's mask must equal
// the oracle's, and CanEnd / MustEnd must agree.
void DifferentialWalks(std::shared_ptr<const Grammar> g, int walks, int max_steps, uint64_t seed) {
  Fixture f;
  std::mt19937_64 rng(seed);
  GrammarMatcher m(g, f.trie);
  int completed = 0;
  for (int w = 0; w < walks; ++w) {
    m.Reset();
    NaiveRecognizer naive(g);
    std::string out;
    for (int step = 0; step < max_steps; ++step) {
      const uint64_t* bits = m.AllowedTokens();
      const std::vector<bool> want = NaiveMask(naive, *f.trie);
      std::vector<int> allowed;
      for (int t = 0; t < f.trie->vocab_size(); ++t) {
        ASSERT_EQ(Bit(bits, t), bool(want[size_t(t)]))
            << "token " << t << " '" << f.trie->bytes(t) << "' after '" << out << "'";
        if (want[size_t(t)]) allowed.push_back(t);
      }
      ASSERT_EQ(m.CanEnd(), naive.can_end()) << out;
      ASSERT_EQ(m.MustEnd(), !naive.can_continue()) << out;
      if (m.MustEnd()) break;
      ASSERT_FALSE(allowed.empty()) << "dead end after '" << out << "'";
      const int t = allowed[rng() % allowed.size()];
      m.AcceptToken(t);
      if (m.finished()) break;
      out += f.trie->bytes(t);
      ASSERT_TRUE(naive.Accepts(f.trie->bytes(t)));
      for (char c : f.trie->bytes(t)) naive.Step(uint8_t(c));
    }
    completed += m.CanEnd() || m.finished();
  }
  EXPECT_GT(completed, 0);
}

TEST(GrammarMatcherTest, MaskEqualsNaiveOracleOnJsonGrammars) {
  DifferentialWalks(std::make_shared<const Grammar>(JsonObjectGrammar()), 30, 60, 1);
  DifferentialWalks(Schema(R"({"type":"object","properties":{"a":{"type":"string","maxLength":4},
               "x":{"type":"array","items":{"enum":[1,12,"é"]},"maxItems":3},
               "b":{"anyOf":[{"type":"number"},{"type":"null"},{"type":"boolean"}]}},
               "required":["x"],"additionalProperties":{"type":"integer"}})"),
                    40, 60, 2);
  DifferentialWalks(Gbnf(R"(root ::= ([a-z] | "é" | "☃" | "😀" | "\\u" [0-9a-f]{4})+ "!"?)"), 40, 30,
                    3);
}

TEST(GrammarMatcherTest, MultiByteAndByteFallbackTokens) {
  Fixture f;
  const auto g = Gbnf(R"(root ::= "\"" ("é" | "☃")* "\"")");
  GrammarMatcher m(g, f.trie);
  const auto id = [&](std::string_view bytes) { return Ids(*f.trie, bytes)[0]; };
  m.AcceptToken(id("\""));
  EXPECT_TRUE(m.IsAllowed(id("é")));
  EXPECT_TRUE(m.IsAllowed(id("\xC3")));   // the lead byte of é
  EXPECT_TRUE(m.IsAllowed(id("\xE2")));   // the lead byte of ☃
  EXPECT_FALSE(m.IsAllowed(id("\xA9")));  // a continuation byte cannot start
  EXPECT_FALSE(m.IsAllowed(id("😀")));
  m.AcceptToken(id("\xC3"));
  // Inside é: only its continuation byte.
  EXPECT_TRUE(m.IsAllowed(id("\xA9")));
  EXPECT_FALSE(m.IsAllowed(id("é")));
  EXPECT_FALSE(m.IsAllowed(id("\"")));
  EXPECT_FALSE(m.CanEnd());
  m.AcceptToken(id("\xA9"));
  m.AcceptToken(id("\xE2"));
  m.AcceptToken(id("\x98"));
  EXPECT_FALSE(m.IsAllowed(id("\x98")));
  m.AcceptToken(id("\x83"));
  m.AcceptToken(id("\""));
  EXPECT_TRUE(m.MustEnd());
  EXPECT_TRUE(m.CanEnd());
}

TEST(GrammarMatcherTest, TokensSpanningTerminalsDuplicatesSpecialAndEnd) {
  Fixture f;
  const auto& trie = *f.trie;
  const auto g =
      Schema(R"({"type":"array","items":{"type":"object","properties":{"x":{"type":"string"}}}})");
  GrammarMatcher m(g, f.trie);
  const auto find_all = [&](std::string_view bytes) { return Ids(trie, bytes); };
  // "[{" spans two terminals; both "{"-tokens (text and byte fallback) are allowed together.
  EXPECT_TRUE(m.IsAllowed(find_all("[{")[0]));
  EXPECT_FALSE(m.IsAllowed(find_all("{")[0]));
  m.AcceptToken(find_all("[")[0]);
  for (int t : find_all("{")) EXPECT_TRUE(m.IsAllowed(t)) << t;
  ASSERT_EQ(find_all("{").size(), 2u);
  m.AcceptToken(find_all("{\"")[0]);  // spans '{' and the key's quote
  m.AcceptToken(find_all("x")[0]);
  EXPECT_TRUE(m.IsAllowed(find_all("\":\"")[0]));  // closes the key, colon, opens the value
  EXPECT_FALSE(m.IsAllowed(find_all("\"}")[0]));
  m.AcceptToken(find_all("\":\"")[0]);
  m.AcceptToken(find_all("a")[0]);
  EXPECT_TRUE(m.IsAllowed(find_all("\"}")[0]));
  m.AcceptToken(find_all("\"}")[0]);
  EXPECT_TRUE(m.IsAllowed(find_all("]")[0]));
  EXPECT_TRUE(m.IsAllowed(find_all(",")[0]));
  EXPECT_FALSE(m.IsAllowed(find_all("},")[0]));
  // Special tokens are never allowed; end tokens only once complete; empty
  // text tokens never.
  EXPECT_FALSE(m.IsAllowed(0));
  EXPECT_FALSE(m.IsAllowed(2));
  EXPECT_FALSE(m.IsAllowed(1));
  EXPECT_FALSE(m.IsAllowed(4));
  EXPECT_FALSE(m.CanEnd());
  m.AcceptToken(find_all("]")[0]);
  EXPECT_TRUE(m.MustEnd());
  EXPECT_TRUE(m.CanEnd());
  EXPECT_TRUE(m.IsAllowed(1));
  EXPECT_TRUE(m.IsAllowed(3));
  for (int t = 0; t < trie.vocab_size(); ++t) {
    EXPECT_EQ(m.IsAllowed(t), trie.kind(t) == TokenKind::kEnd) << t;
  }
  m.AcceptToken(3);
  EXPECT_TRUE(m.finished());
  for (int t = 0; t < trie.vocab_size(); ++t) EXPECT_FALSE(m.IsAllowed(t)) << t;
}

TEST(GrammarMatcherTest, MaskLogitsAndErrors) {
  Fixture f;
  GrammarMatcher m(Gbnf(R"(root ::= "ab" | "12")"), f.trie);
  std::vector<float> logits(size_t(f.trie->vocab_size()), 1.0f);
  m.MaskLogits(logits.data());
  for (int t = 0; t < f.trie->vocab_size(); ++t) {
    const std::string_view b = f.trie->bytes(t);
    const bool want = f.trie->kind(t) == TokenKind::kText && !b.empty() &&
                      (std::string_view("ab").substr(0, b.size()) == b ||
                       std::string_view("12").substr(0, b.size()) == b);
    EXPECT_EQ(logits[size_t(t)], want ? 1.0f : -std::numeric_limits<float>::infinity())
        << t << " '" << b << "'";
  }
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(0); }).find("special token"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(1); }).find("before the output is complete"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(4); }).find("has no text"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(-1); }).find("outside [0, "), std::string::npos);
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(f.trie->vocab_size()); }).find("outside"),
            std::string::npos);
  // A rejected AcceptBytes leaves the state alone; CanAcceptBytes never moves it.
  EXPECT_TRUE(m.CanAcceptBytes("ab"));
  EXPECT_FALSE(m.CanAcceptBytes("abc"));
  EXPECT_FALSE(m.AcceptBytes("ax"));
  EXPECT_TRUE(m.AcceptBytes("a"));
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(5); }).find("not allowed in this state"),
            std::string::npos);  // "{"
  EXPECT_TRUE(m.AcceptBytes("b"));
  EXPECT_TRUE(m.MustEnd());
  m.AcceptToken(1);
  EXPECT_NE(ErrorOf([&] { m.AcceptToken(1); }).find("after the end token"), std::string::npos);
  m.Reset();
  EXPECT_FALSE(m.finished());
  EXPECT_TRUE(m.AcceptBytes("12"));
}

TEST(GrammarMatcherTest, CompactionKeepsTheStateAndBoundsTheTables) {
  Fixture f;
  // Every position of a long match is a distinct DFA state.
  const auto g = Gbnf(R"(root ::= ([a-b]{1000}){5} "x")");
  GrammarMatcher m(g, f.trie);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 4999; ++i) {
    ASSERT_TRUE(m.AcceptBytes(std::string(1, "ab"[rng() & 1]))) << i;
    ASSERT_LE(m.dfa_states(), kMatcherCompactStates + 1) << i;
  }
  // The matcher compacted and still knows where it is: one more a/b, then "x".
  EXPECT_FALSE(m.CanEnd());
  EXPECT_FALSE(m.IsAllowed(Ids(*f.trie, "x")[0]));
  EXPECT_FALSE(m.AcceptBytes("x"));
  EXPECT_TRUE(m.AcceptBytes("a"));
  EXPECT_TRUE(m.IsAllowed(Ids(*f.trie, "x")[0]));
  EXPECT_FALSE(m.IsAllowed(Ids(*f.trie, "a")[0]));
  EXPECT_TRUE(m.AcceptBytes("x"));
  EXPECT_TRUE(m.MustEnd());
}

TEST(LazyDfaTest, StatesAreSharedAndStacksStayFlatUnderRepetition) {
  // x* keeps one state per position in the loop, however long the input.
  const auto g = Gbnf(R"(root ::= "[" ([a-z] | "é")* "]")");
  LazyDfa dfa(g);
  LazyDfa::StateId s = dfa.Step(dfa.Start(), '[');
  const LazyDfa::StateId in_loop = s;
  for (int i = 0; i < 1000; ++i) s = dfa.Step(s, uint8_t('a' + i % 26));
  EXPECT_EQ(s, in_loop);
  s = dfa.Step(dfa.Step(s, 0xC3), 0xA9);
  EXPECT_EQ(s, in_loop);
  EXPECT_LT(dfa.num_states(), 10u);
  EXPECT_LT(dfa.num_frames(), 20u);
  EXPECT_EQ(dfa.Step(s, 0xC3 + 0), dfa.Step(in_loop, 0xC3));
  EXPECT_FALSE(dfa.Describe(s).empty());
}

TEST(LazyDfaTest, ClosureExplosionIsAClearError) {
  // 2^20 ways to reach the same byte: every alternative pair doubles the stacks.
  std::string gbnf = "root ::= r0 \"z\"\n";
  for (int i = 0; i < 20; ++i) {
    const std::string me = std::to_string(i), next = std::to_string(i + 1);
    gbnf.append("r").append(me).append(" ::= r").append(next).append(" \"x\" | r");
    gbnf.append(next).append(" \"y\"\n");
  }
  gbnf += "r20 ::= \"a\"\n";
  const std::string err = ErrorOf([&] { LazyDfa dfa(Gbnf(gbnf)); });
  EXPECT_NE(err.find("too ambiguous"), std::string::npos) << err;
}

TEST(TokenTrieTest, PreorderLayoutAndValidation) {
  TokenVocab v;
  v.bytes = {"b", "ab", "a", "", "abc", "a"};
  v.kinds = {TokenKind::kText, TokenKind::kText, TokenKind::kText,
             TokenKind::kEnd,  TokenKind::kText, TokenKind::kText};
  const TokenTrie trie(v);
  // Prefixes in preorder: a, ab, abc, b.
  ASSERT_EQ(trie.nodes().size(), 4u);
  EXPECT_EQ(trie.nodes()[0].byte, 'a');
  EXPECT_EQ(trie.nodes()[0].end, 3u);
  EXPECT_EQ(trie.nodes()[2].depth, 3);
  EXPECT_EQ(trie.nodes()[3].byte, 'b');
  EXPECT_EQ(trie.nodes()[0].more, 1);  // tokens 2 and 5
  EXPECT_EQ(trie.max_depth(), 3u);
  EXPECT_EQ(trie.end_tokens(), std::vector<int32_t>{3});
  EXPECT_EQ(trie.bytes(4), "abc");
  TokenVocab bad = v;
  bad.kinds.pop_back();
  EXPECT_NE(ErrorOf([&] { TokenTrie t(bad); }).find("one per token"), std::string::npos);
  EXPECT_NE(ErrorOf([] { TokenTrie t(TokenVocab{}); }).find("empty vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace rg::test
