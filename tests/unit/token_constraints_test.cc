// What a sequence may sample besides the sampler chain (sampling/token_constraints.h,
// generate/sequence_decoder.h): logit_bias and a grammar, applied to the
// sequence's own copy of the logits row; logprobs still report the model's
// row; a grammar ends the sequence once its value is complete.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "generate/sequence_decoder.h"
#include "grammar_test_util.h"

namespace rg::test {
namespace {

constexpr int kVocab = 100;
constexpr int32_t kEos = 1;

// A vocabulary of single printable characters: token i >= 3 is the byte
// ' ' + (i - 3) % 95; 1 is the end token, 0 and 2 are special.
std::shared_ptr<const TokenTrie> CharTrie() {
  TokenVocab v;
  for (int i = 0; i < kVocab; ++i) {
    v.kinds.push_back(i == kEos ? TokenKind::kEnd : i < 3 ? TokenKind::kSpecial : TokenKind::kText);
    v.bytes.push_back(i < 3 ? "" : std::string(1, char(' ' + (i - 3) % 95)));
  }
  return std::make_shared<const TokenTrie>(v);
}

int32_t IdOf(char c) { return 3 + (c - ' '); }

struct Decoded {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<TokenLogprob> lps;
  SequenceDecoder::Outcome end;
};

// Samples from the same row every step until the decoder is done.
Decoded Decode(Request req, const std::vector<float>& row) {
  Decoded run;
  req.on_token = [&](int32_t id, const TokenLogprob* lp) {
    run.ids.push_back(id);
    if (id >= 3) run.text.push_back(char(' ' + (id - 3) % 95));
    if (lp) run.lps.push_back(*lp);
    return true;
  };
  SequenceDecoder dec(req, kEos, kVocab, /*sample_vocab=*/kVocab);
  for (int step = 0; step < 10000; ++step) {
    run.end = dec.Next(row.data());
    if (run.end.done) break;
  }
  return run;
}

Request Greedy() {
  Request r;
  r.prompt = {2};
  r.sampling.temperature = 0;
  r.max_tokens = 5;
  return r;
}

TEST(LogitBias, MinusHundredBansAndPlusHundredForces) {
  std::vector<float> row(kVocab, 0.f);
  row[10] = 5.f;  // the model's favourite
  Request r = Greedy();
  EXPECT_EQ(Decode(r, row).ids, std::vector<int32_t>(5, 10));
  r.logit_bias = {{10, -100.f}};
  for (int32_t id : Decode(r, row).ids) EXPECT_NE(id, 10);
  // +100 outweighs any soft-capped logit, also when sampling.
  r.logit_bias = {{42, 100.f}};
  r.sampling.temperature = 1;
  r.sampling.top_k = 0, r.sampling.top_p = 1, r.sampling.min_p = 0;
  r.max_tokens = 50;
  EXPECT_EQ(Decode(r, row).ids, std::vector<int32_t>(50, 42));
  // A small bias shifts greedy decoding by that much: 5 - 4.5 < 1.
  r = Greedy();
  r.logit_bias = {{10, -4.5f}, {11, 1.f}};
  EXPECT_EQ(Decode(r, row).ids[0], 11);
}

TEST(LogitBias, LogprobsReportTheModelsRowAndTheRowIsLeftIntact) {
  std::vector<float> row(kVocab, 0.f);
  row[10] = 5.f;
  const std::vector<float> before = row;
  Request r = Greedy();
  r.logit_bias = {{10, -100.f}, {20, 3.f}};
  r.logprobs = 2;
  const Decoded run = Decode(r, row);
  EXPECT_EQ(row, before);  // the engine shares rows (a snapshot's logits): never written
  ASSERT_EQ(run.lps.size(), 5u);
  const TokenLogprob want = ComputeLogprob(before.data(), kVocab, 20, 2);
  EXPECT_EQ(run.lps[0].id, 20);
  EXPECT_FLOAT_EQ(run.lps[0].logprob, want.logprob);  // not the biased distribution's
  ASSERT_EQ(run.lps[0].top.size(), 2u);
  EXPECT_EQ(run.lps[0].top[0].first, 10);  // the banned token is still the model's top choice
}

TEST(LogitBias, InvalidBiasesAreOneLineErrorsNamingTheField) {
  for (const std::vector<LogitBias>& bad : std::vector<std::vector<LogitBias>>{
           {{kVocab, 1.f}}, {{-1, 1.f}}, {{3, 100.5f}}, {{3, std::numeric_limits<float>::quiet_NaN()}}}) {
    Request r = Greedy();
    r.logit_bias = bad;
    const std::string msg = ErrorOf([&] { SequenceDecoder(r, kEos, kVocab, /*sample_vocab=*/kVocab); });
    EXPECT_NE(msg.find("logit_bias"), std::string::npos) << msg;
  }
}

TEST(GrammarConstraint, EveryOutputMatchesAndEndsWhenTheValueIsComplete) {
  // A uniform model (any token equally likely) samples only what the grammar allows.
  const auto grammar = Gbnf(R"(root ::= "[" [0-9] ("," [0-9]){0,5} "]")");
  const std::regex re(R"(\[[0-9](,[0-9]){0,5}\])");
  const std::vector<float> uniform(kVocab, 0.f);
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Request r;
    r.prompt = {2};
    r.sampling.temperature = 1;
    r.sampling.seed = seed;
    r.max_tokens = 100;
    r.grammar = {grammar, CharTrie()};
    const Decoded run = Decode(r, uniform);
    EXPECT_TRUE(std::regex_match(run.text, re)) << run.text;
    // Done right after the closing bracket, as a stop (not max_tokens).
    EXPECT_EQ(run.end.reason, FinishReason::kStop) << run.text;
    EXPECT_EQ(run.ids.back(), IdOf(']'));
    EXPECT_EQ(run.end.token, IdOf(']'));  // reported, not yet fed
  }
}

TEST(GrammarConstraint, BiasComesBeforeTheMaskAndAnEndTokenStopsUnreported) {
  // root ::= [a-z]+ may end after any letter: the model decides. +100 on
  // 'q' (allowed) picks it first; then +100 on the end token ends it.
  const std::vector<float> uniform(kVocab, 0.f);
  Request r = Greedy();
  r.max_tokens = 20;
  r.grammar = {Gbnf("root ::= [a-z]+"), CharTrie()};
  r.logit_bias = {{IdOf('q'), 100.f}, {IdOf('7'), 100.f}};  // '7' is masked whatever its bias
  Decoded run = Decode(r, uniform);
  EXPECT_EQ(run.text, std::string(20, 'q'));
  EXPECT_EQ(run.end.reason, FinishReason::kLength);
  r.logit_bias = {{kEos, 100.f}};  // the end token is allowed only once a letter is there
  run = Decode(r, uniform);
  EXPECT_EQ(run.ids.size(), 1u);
  EXPECT_EQ(run.end.reason, FinishReason::kStop);
  EXPECT_EQ(run.end.token, -1);  // the end token is neither reported nor fed
  // ignore_eos does not run past the grammar's end either.
  r.ignore_eos = true;
  EXPECT_EQ(Decode(r, uniform).ids.size(), 1u);
}

TEST(GrammarConstraint, IdsPastTheTokenizersVocabularyAreNeverSampled) {
  // A model vocabulary padded past the tokenizer's (here 100 -> 300 logits).
  std::vector<float> row(300, 0.f);
  row[250] = 50.f;
  Request r = Greedy();
  r.grammar = {Gbnf("root ::= [a-z]+"), CharTrie()};
  Decoded run;
  r.on_token = [&](int32_t id, const TokenLogprob*) {
    run.ids.push_back(id);
    return true;
  };
  SequenceDecoder dec(r, kEos, 300, /*sample_vocab=*/300);
  for (int i = 0; i < 5; ++i) EXPECT_LT(dec.Next(row.data()).token, kVocab);
}

}  // namespace
}  // namespace rg::test
