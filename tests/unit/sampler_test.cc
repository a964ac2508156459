// Sampling steps, SamplingParams::Validate and Sampler.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "sampling/sampler.h"
#include "sampling/sampling_params.h"
#include "sampling/steps.h"

// ---- allocation counting for the "no allocations per token" test.
// Defined WEAK so that, if another test file in this binary also replaces the
// global operator new, the link still succeeds (theirs wins); the test then
// detects that the counter is not live and skips instead of failing.
namespace {
thread_local bool g_count_allocs = false;
thread_local long g_allocs = 0;
}  // namespace

__attribute__((weak)) void* operator new(std::size_t n) {
  if (g_count_allocs) ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
__attribute__((weak)) void* operator new[](std::size_t n) {
  if (g_count_allocs) ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
__attribute__((weak)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((weak)) void operator delete[](void* p) noexcept { std::free(p); }
__attribute__((weak)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }
__attribute__((weak)) void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace rg {
namespace {

Candidates FromProbs(const std::vector<float>& p) {
  Candidates c;
  for (int i = 0; i < int(p.size()); ++i) c.items.push_back({i, std::log(p[i]), p[i]});
  c.sorted = false;
  return c;
}

Candidates FromLogits(const std::vector<float>& l) {
  Candidates c;
  FillCandidates(c, l.data(), int(l.size()));
  return c;
}

std::vector<int> Ids(const Candidates& c) {
  std::vector<int> ids;
  for (const auto& x : c.items) ids.push_back(x.id);
  return ids;
}

const Candidate& Find(const Candidates& c, int id) {
  for (const auto& x : c.items) {
    if (x.id == id) return x;
  }
  ADD_FAILURE() << "id " << id << " not found";
  return c.items.front();
}

template <class Fn>
std::string ErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected rg::Error";
  return "";
}

SamplingParams PureParams(uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

// ---------------------------------------------------------------- steps

TEST(SamplerStepsTest, TopPKeepsSmallestPrefixReachingP) {
  // Deliberately unsorted input: ids 0..3 have p 0.15, 0.5, 0.05, 0.3.
  const std::vector<float> probs = {0.15f, 0.5f, 0.05f, 0.3f};
  {
    auto c = FromProbs(probs);
    TopP(c, 0.8f);  // 0.5 + 0.3 = 0.8 >= 0.8 -> exactly 2
    EXPECT_EQ(Ids(c), (std::vector<int>{1, 3}));
    EXPECT_TRUE(c.sorted);
  }
  {
    auto c = FromProbs(probs);
    TopP(c, 0.81f);  // needs the third
    EXPECT_EQ(Ids(c), (std::vector<int>{1, 3, 0}));
  }
  {
    auto c = FromProbs(probs);
    TopP(c, 0.01f);  // at least one
    EXPECT_EQ(Ids(c), (std::vector<int>{1}));
  }
  {
    auto c = FromProbs(probs);
    TopP(c, 1.0f);  // off: untouched, unsorted
    EXPECT_EQ(Ids(c), (std::vector<int>{0, 1, 2, 3}));
  }
  {
    auto c = FromProbs(probs);
    TopP(c, 0.999f);
    EXPECT_EQ(c.items.size(), 4u);
  }
}

TEST(SamplerStepsTest, TopKKeepsHighestLogitsLowerIdOnTies) {
  auto c = FromLogits({1.0f, 5.0f, 3.0f, 5.0f, 2.0f});
  TopK(c, 2);
  EXPECT_EQ(Ids(c), (std::vector<int>{1, 3}));
  EXPECT_TRUE(c.sorted);
  c = FromLogits({1.0f, 5.0f, 3.0f, 5.0f, 2.0f});
  TopK(c, 3);
  EXPECT_EQ(Ids(c), (std::vector<int>{1, 3, 2}));
  c = FromLogits({1.0f, 5.0f, 3.0f});
  TopK(c, 0);  // off
  EXPECT_EQ(Ids(c), (std::vector<int>{0, 1, 2}));
  TopK(c, 3);  // k >= size: off
  EXPECT_EQ(Ids(c), (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(c.sorted);
  // Large vocabulary: same result as a full sort.
  std::mt19937 rng(3);
  std::vector<float> logits(50000);
  for (auto& x : logits) x = float(rng() % 1000) * 0.01f;  // many ties
  c = FromLogits(logits);
  TopK(c, 40);
  auto ref = FromLogits(logits);
  std::sort(ref.items.begin(), ref.items.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  ref.items.resize(40);
  EXPECT_EQ(Ids(c), Ids(ref));
}

TEST(SamplerStepsTest, MinPIsRelativeToMax) {
  const std::vector<float> probs = {0.15f, 0.5f, 0.05f, 0.3f};
  auto c = FromProbs(probs);
  MinP(c, 0.2f);  // threshold 0.1: drops only 0.05, order preserved
  EXPECT_EQ(Ids(c), (std::vector<int>{0, 1, 3}));
  c = FromProbs(probs);
  MinP(c, 0.5f);  // threshold 0.25
  EXPECT_EQ(Ids(c), (std::vector<int>{1, 3}));
  c = FromProbs(probs);
  MinP(c, 1.0f);  // only the max
  EXPECT_EQ(Ids(c), (std::vector<int>{1}));
  c = FromProbs(probs);
  MinP(c, 0.0f);  // off
  EXPECT_EQ(c.items.size(), 4u);
  // Sorted input takes the prefix path, same answer.
  c = FromProbs(probs);
  TopP(c, 1.0f - 1e-7f);
  ASSERT_TRUE(c.sorted);
  MinP(c, 0.2f);
  EXPECT_EQ(Ids(c), (std::vector<int>{1, 3, 0}));
}

TEST(SamplerStepsTest, PenaltiesUseLlamaCppFormula) {
  const std::vector<float> logits = {2.0f, -2.0f, 0.0f, 1.0f, 3.0f};
  TokenHistory h(5, 64);
  for (int id : {0, 1, 1, 2}) h.Push(id);
  EXPECT_EQ(h.count(0), 1);
  EXPECT_EQ(h.count(1), 2);
  EXPECT_EQ(h.count(3), 0);
  const float rp = 2.0f, freq = 0.5f, pres = 0.25f;
  // id 0: 2/2 - (1*0.5 + 0.25) = 0.25;  id 1: -2*2 - (2*0.5 + 0.25) = -5.25
  // id 2: 0*2 - (0.5 + 0.25) = -0.75;   ids 3, 4 untouched.
  const std::vector<float> expected = {0.25f, -5.25f, -0.75f, 1.0f, 3.0f};
  auto c = FromLogits(logits);  // id order: fast path
  ApplyPenalties(c, h, rp, freq, pres);
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(c.items[i].logit, expected[i]) << i;
  EXPECT_FALSE(c.sorted);
  // Shuffled order (general path) gives the same per-id values.
  c = FromLogits(logits);
  std::reverse(c.items.begin(), c.items.end());
  ApplyPenalties(c, h, rp, freq, pres);
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(Find(c, i).logit, expected[i]) << i;
  // Repeat penalty alone.
  c = FromLogits(logits);
  ApplyPenalties(c, h, 1.5f, 0.0f, 0.0f);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f / 1.5f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -2.0f * 1.5f);
  EXPECT_FLOAT_EQ(c.items[2].logit, 0.0f);
  EXPECT_FLOAT_EQ(c.items[3].logit, 1.0f);
}

TEST(SamplerStepsTest, HistoryWindowEvictsOldTokens) {
  TokenHistory h(10, 3);
  for (int id : {0, 1, 1, 2}) h.Push(id);  // window keeps 1, 1, 2
  EXPECT_EQ(h.count(0), 0);
  EXPECT_EQ(h.count(1), 2);
  EXPECT_EQ(h.count(2), 1);
  EXPECT_EQ(h.distinct().size(), 2u);
  h.Push(3);  // 1, 2, 3
  h.Push(3);  // 2, 3, 3
  EXPECT_EQ(h.count(1), 0);
  EXPECT_EQ(h.count(3), 2);
  EXPECT_EQ(h.distinct().size(), 2u);
  h.Clear();
  EXPECT_EQ(h.count(3), 0);
  EXPECT_TRUE(h.distinct().empty());
  TokenHistory off(10, 0);
  off.Push(4);
  EXPECT_EQ(off.count(4), 0);
}

TEST(SamplerStepsTest, TemperatureSoftmaxRenormalize) {
  auto c = FromLogits({1.0f, 2.0f, -1.0f});
  ApplyTemperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.items[1].logit, 4.0f);
  EXPECT_FLOAT_EQ(c.items[2].logit, -2.0f);
  Softmax(c);
  const double z = std::exp(2.0) + std::exp(4.0) + std::exp(-2.0);
  EXPECT_NEAR(c.items[0].p, std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR(c.items[1].p, std::exp(4.0) / z, 1e-6);
  EXPECT_NEAR(c.items[2].p, std::exp(-2.0) / z, 1e-6);
  // Higher temperature flattens.
  auto hot = FromLogits({1.0f, 2.0f, -1.0f});
  ApplyTemperature(hot, 2.0f);
  Softmax(hot);
  EXPECT_GT(hot.items[2].p, c.items[2].p);
  EXPECT_LT(hot.items[1].p, c.items[1].p);
  // -inf masks a token.
  auto masked = FromLogits({0.0f, -std::numeric_limits<float>::infinity(), 0.0f});
  Softmax(masked);
  EXPECT_FLOAT_EQ(masked.items[0].p, 0.5f);
  EXPECT_EQ(masked.items[1].p, 0.0f);
  // Renormalize after truncation.
  auto r = FromProbs({0.5f, 0.3f});
  Renormalize(r);
  EXPECT_FLOAT_EQ(r.items[0].p, 0.625f);
  EXPECT_FLOAT_EQ(r.items[1].p, 0.375f);
}

TEST(SamplerStepsTest, DrawIsInverseCdf) {
  auto c = FromProbs({0.5f, 0.3f, 0.2f});
  EXPECT_EQ(Draw(c, 0.0), 0);
  EXPECT_EQ(Draw(c, 0.49), 0);
  EXPECT_EQ(Draw(c, 0.5), 1);
  EXPECT_EQ(Draw(c, 0.79), 1);
  EXPECT_EQ(Draw(c, 0.81), 2);
  EXPECT_EQ(Draw(c, 0.9999999999), 2);
  // Zero-probability items are never drawn, even at the edges.
  Candidates z;
  z.items = {{7, 0.0f, 0.0f}, {8, 0.0f, 1.0f}, {9, 0.0f, 0.0f}};
  EXPECT_EQ(Draw(z, 0.0), 8);
  EXPECT_EQ(Draw(z, 0.9999999999), 8);
  // UniformDouble stays in [0, 1).
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const double u = UniformDouble(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(SamplerStepsTest, ArgMaxFirstIndexOnTies) {
  EXPECT_EQ(ArgMax(FromLogits({1.0f, 3.0f, 3.0f, 2.0f})), 1);
  EXPECT_EQ(ArgMax(FromLogits({-5.0f, -5.0f})), 0);
}

// ---------------------------------------------------------------- Sampler

TEST(SamplerTest, GreedyIsArgmaxFirstOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p, 4);
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.Sample(logits.data()), 1);
}

TEST(SamplerTest, GreedyAppliesPenaltiesFirst) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  Sampler s(p, 4);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f};
  EXPECT_EQ(s.Sample(logits.data()), 1);
  s.Accept(1);  // id 1: 3 -> 1.5 < 2
  EXPECT_EQ(s.Sample(logits.data()), 2);
  s.Accept(2);  // id 2: 2 -> 1; id 1 stays 1.5 (repeat penalty is per id, not per count)
  EXPECT_EQ(s.Sample(logits.data()), 1);
  s.Reset();  // history cleared
  EXPECT_EQ(s.Sample(logits.data()), 1);
  // A penalised token tying an earlier one: the first index wins.
  Sampler t(p, 4);
  const std::vector<float> tie = {1.0f, 2.0f, 0.5f, 0.0f};
  t.Accept(1);  // id 1: 2 -> 1 == id 0
  EXPECT_EQ(t.Sample(tie.data()), 0);
}

std::vector<float> RandomLogits(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 3.0f);  // only used to make test data
  std::vector<float> l(n);
  for (auto& x : l) x = nd(rng);
  return l;
}

TEST(SamplerTest, SameSeedSameSequence) {
  const auto logits = RandomLogits(1000, 5);
  SamplingParams p;  // defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05
  p.repeat_penalty = 1.1f;
  p.seed = 1234;
  Sampler a(p, 1000), b(p, 1000);
  std::vector<int> seq_a, seq_b;
  for (int i = 0; i < 200; ++i) {
    seq_a.push_back(a.Sample(logits.data()));
    a.Accept(seq_a.back());
    seq_b.push_back(b.Sample(logits.data()));
    b.Accept(seq_b.back());
  }
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_GT(std::set<int>(seq_a.begin(), seq_a.end()).size(), 5u);  // really sampling
  // Reset() replays the same sequence.
  a.Reset();
  std::vector<int> replay;
  for (int i = 0; i < 200; ++i) {
    replay.push_back(a.Sample(logits.data()));
    a.Accept(replay.back());
  }
  EXPECT_EQ(replay, seq_a);
  // A different seed gives a different sequence.
  p.seed = 1235;
  Sampler c(p, 1000);
  std::vector<int> seq_c;
  for (int i = 0; i < 200; ++i) {
    seq_c.push_back(c.Sample(logits.data()));
    c.Accept(seq_c.back());
  }
  EXPECT_NE(seq_c, seq_a);
}

// Pearson chi-square statistic of observed counts vs expected probabilities.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double e = probs[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(SamplerTest, FrequenciesMatchDistribution) {
  const std::vector<double> probs = {0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.02, 0.01};
  const auto logits = LogitsOf(probs);
  Sampler s(PureParams(99), int(probs.size()));
  constexpr int kDraws = 20000;
  std::vector<int> counts(probs.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[s.Sample(logits.data())];
  // 7 degrees of freedom: P(chi2 > 24.32) = 0.001 for a correct sampler.
  const double chi2 = ChiSquare(counts, probs, kDraws);
  EXPECT_LT(chi2, 24.32) << "chi-square with 7 dof";
  for (size_t i = 0; i < probs.size(); ++i) {
    const double e = probs[i] * kDraws, sd = std::sqrt(kDraws * probs[i] * (1 - probs[i]));
    EXPECT_NEAR(counts[i], e, 5 * sd) << "id " << i;  // 5 sigma per bin
  }
}

TEST(SamplerTest, TruncatedChainFrequencies) {
  const std::vector<double> probs = {0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.02, 0.01};
  const auto logits = LogitsOf(probs);
  // Each of these keeps exactly ids {0, 1, 2}, renormalised to 0.4/0.75 ...
  std::vector<SamplingParams> variants(3, PureParams(7));
  variants[0].top_k = 3;
  variants[1].top_p = 0.7f;  // 0.4 + 0.2 = 0.6 < 0.7 <= 0.75
  variants[2].min_p = 0.3f;  // threshold 0.12: keeps 0.4, 0.2, 0.15
  const std::vector<double> kept = {0.4 / 0.75, 0.2 / 0.75, 0.15 / 0.75};
  for (const auto& p : variants) {
    Sampler s(p, int(probs.size()));
    constexpr int kDraws = 20000;
    std::vector<int> counts(probs.size(), 0);
    for (int i = 0; i < kDraws; ++i) ++counts[s.Sample(logits.data())];
    for (size_t i = 3; i < probs.size(); ++i) EXPECT_EQ(counts[i], 0) << "id " << i;
    // 2 degrees of freedom: P(chi2 > 13.82) = 0.001.
    EXPECT_LT(ChiSquare({counts[0], counts[1], counts[2]}, kept, kDraws), 13.82)
        << "top_k=" << p.top_k << " top_p=" << p.top_p << " min_p=" << p.min_p;
  }
  // Temperature 0.5 squares the odds: p ~ probs^2.
  SamplingParams cold = PureParams(11);
  cold.temperature = 0.5f;
  Sampler s(cold, int(probs.size()));
  std::vector<double> sq;
  double z = 0;
  for (double p : probs) z += p * p;
  for (double p : probs) sq.push_back(p * p / z);
  std::vector<int> counts(probs.size(), 0);
  for (int i = 0; i < 20000; ++i) ++counts[s.Sample(logits.data())];
  // Merge the three rarest bins (expected < 5 draws each would be noisy).
  std::vector<int> c6(counts.begin(), counts.begin() + 5);
  std::vector<double> p6(sq.begin(), sq.begin() + 5);
  c6.push_back(counts[5] + counts[6] + counts[7]);
  p6.push_back(sq[5] + sq[6] + sq[7]);
  // 5 degrees of freedom: P(chi2 > 20.52) = 0.001.
  EXPECT_LT(ChiSquare(c6, p6, 20000), 20.52);
}

TEST(SamplerTest, LargeVocabulary) {
  const int vocab = 256000;
  const auto logits = RandomLogits(vocab, 8);
  SamplingParams p;
  p.top_k = 0;  // full sort path for top-p
  p.seed = 3;
  Sampler s(p, vocab);
  for (int i = 0; i < 5; ++i) {
    const int id = s.Sample(logits.data());
    ASSERT_GE(id, 0);
    ASSERT_LT(id, vocab);
    s.Accept(id);
  }
  SamplingParams g;
  g.temperature = 0.0f;
  Sampler greedy(g, vocab);
  EXPECT_EQ(greedy.Sample(logits.data()),
            int(std::max_element(logits.begin(), logits.end()) - logits.begin()));
}

TEST(SamplerTest, NoAllocationsPerToken) {
  // Probe: is our counting operator new the one linked in?
  g_allocs = 0;
  g_count_allocs = true;
  void* volatile probe = ::operator new(16);
  ::operator delete(probe);
  g_count_allocs = false;
  if (g_allocs == 0) GTEST_SKIP() << "another operator new replacement is linked in";

  const int vocab = 256000;
  const auto logits = RandomLogits(vocab, 9);
  for (int variant = 0; variant < 3; ++variant) {
    SamplingParams p;
    p.repeat_penalty = 1.2f;
    p.presence_penalty = 0.1f;
    p.repeat_last_n = 16;
    if (variant == 1) p.top_k = 0;          // full sort + top-p
    if (variant == 2) p.temperature = 0.0f;  // greedy
    Sampler s(p, vocab);
    g_allocs = 0;
    g_count_allocs = true;
    for (int i = 0; i < 20; ++i) s.Accept(s.Sample(logits.data()));
    s.Reset();
    s.Accept(s.Sample(logits.data()));
    g_count_allocs = false;
    EXPECT_EQ(g_allocs, 0) << "variant " << variant;
  }
}

TEST(SamplerTest, RejectsBadLogitsAndIds) {
  Sampler s(PureParams(1), 3);
  std::vector<float> l = {0.0f, std::nanf(""), 1.0f};
  auto msg = ErrorOf([&] { s.Sample(l.data()); });
  EXPECT_NE(msg.find("token 1"), std::string::npos) << msg;
  l = {0.0f, 1.0f, std::numeric_limits<float>::infinity()};
  msg = ErrorOf([&] { s.Sample(l.data()); });
  EXPECT_NE(msg.find("token 2"), std::string::npos) << msg;
  const float ninf = -std::numeric_limits<float>::infinity();
  l = {ninf, ninf, ninf};
  ErrorOf([&] { s.Sample(l.data()); });
  SamplingParams g;
  g.temperature = 0.0f;
  Sampler greedy(g, 3);
  ErrorOf([&] { greedy.Sample(l.data()); });
  l = {ninf, 0.0f, ninf};  // -inf masks, fine
  EXPECT_EQ(s.Sample(l.data()), 1);
  msg = ErrorOf([&] { s.Accept(3); });
  EXPECT_NE(msg.find("3"), std::string::npos) << msg;
  ErrorOf([&] { s.Accept(-1); });
  ErrorOf([] { Sampler bad(SamplingParams{}, 0); });
}

TEST(SamplerTest, ValidateRejectsAbsurdValues) {
  EXPECT_NO_THROW(SamplingParams{}.Validate());
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* field;
    void (*set)(SamplingParams&, float);
    std::vector<float> bad;
    std::vector<float> good;
  };
  const std::vector<Case> cases = {
      {"temperature", [](SamplingParams& p, float v) { p.temperature = v; },
       {-0.1f, -1.0f, nan, inf, 1000.0f}, {0.0f, 0.01f, 1.0f, 2.0f, 100.0f}},
      {"top_p", [](SamplingParams& p, float v) { p.top_p = v; },
       {0.0f, -0.5f, 1.01f, nan, inf}, {1e-6f, 0.5f, 1.0f}},
      {"min_p", [](SamplingParams& p, float v) { p.min_p = v; },
       {-0.01f, 1.5f, nan}, {0.0f, 0.5f, 1.0f}},
      {"repeat_penalty", [](SamplingParams& p, float v) { p.repeat_penalty = v; },
       {0.0f, -1.0f, nan, inf, 1e6f}, {0.5f, 1.0f, 1.3f}},
      {"presence_penalty", [](SamplingParams& p, float v) { p.presence_penalty = v; },
       {nan, inf, -inf, 1000.0f}, {-1.0f, 0.0f, 1.5f}},
      {"frequency_penalty", [](SamplingParams& p, float v) { p.frequency_penalty = v; },
       {nan, inf, -1000.0f}, {-1.0f, 0.0f, 1.5f}},
      {"top_k", [](SamplingParams& p, float v) { p.top_k = int(v); }, {-1.0f, -40.0f},
       {0.0f, 1.0f, 40.0f, 1e6f}},
      {"repeat_last_n", [](SamplingParams& p, float v) { p.repeat_last_n = int(v); },
       {-1.0f, 1e8f}, {0.0f, 64.0f, 4096.0f}},
  };
  for (const auto& c : cases) {
    for (float v : c.bad) {
      SamplingParams p;
      c.set(p, v);
      const std::string msg = ErrorOf([&] { p.Validate(); });
      EXPECT_NE(msg.find(c.field), std::string::npos) << c.field << "=" << v << ": " << msg;
      EXPECT_NE(msg.find("must be"), std::string::npos) << msg;  // states the allowed range
      // The Sampler constructor validates too.
      ErrorOf([&] { Sampler s(p, 10); });
    }
    for (float v : c.good) {
      SamplingParams p;
      c.set(p, v);
      EXPECT_NO_THROW(p.Validate()) << c.field << "=" << v;
    }
  }
}

}  // namespace
}  // namespace rg
