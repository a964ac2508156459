// Prefill of a whole chunk, chunked prefill, token-by-token decode and batched
// decode must compute the same thing, including far past the attention window
// (where the KV ring wraps) and across the conv ring.
#include <gtest/gtest.h>

#include <random>

#include "fixture_util.h"
#include "core/error.h"
#include "generate/session.h"

namespace rg::test {
namespace {

std::vector<int32_t> RandomTokens(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  t[0] = 2;  // BOS
  for (size_t i = 1; i < n; ++i) t[i] = int32_t(rng() % uint32_t(vocab));
  return t;
}

// Logits [T, V] of tokens fed to s one at a time.
std::vector<float> StepAll(Session& s, const std::vector<int32_t>& tokens) {
  const int64_t V = s.config().vocab_size;
  std::vector<float> out(tokens.size() * size_t(V));
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* l = s.Step(tokens[t]);
    std::copy(l, l + V, out.begin() + t * V);
  }
  return out;
}

// Reference noise between the two paths is ~1e-4 on these models; rgemma's
// paths share kernels, so they agree far closer.
constexpr double kPathTolerance = 2e-4;

class PrefillDecode : public ::testing::Test {
 protected:
  void SetUp() override { weights_ = Weights::Load(std::string(RG_TEST_DATA) + "/fixtures/small"); }
  std::shared_ptr<const Weights> weights_;
  ThreadPool pool_{2};
};

TEST_F(PrefillDecode, ChunkedPrefillEqualsDecodeFarPastWindow) {
  const int64_t V = weights_->config.vocab_size;
  const int64_t W = weights_->config.attention_window;  // 16
  const auto tokens = RandomTokens(size_t(W * 8 + 3), V, 7);
  const size_t T = tokens.size();

  Session step(weights_, pool_, 1);
  const std::vector<float> decoded = StepAll(step, tokens);
  for (int64_t chunk : {int64_t(T), int64_t(W), int64_t(W + 1), int64_t(7), int64_t(3)}) {
    Session pre(weights_, pool_, chunk);
    std::vector<float> got(T * V);
    pre.ForwardAll(tokens, got.data());
    EXPECT_LE(MaxAbsDiff(got.data(), decoded.data(), got.size()), kPathTolerance) << "chunk " << chunk;
    EXPECT_EQ(pre.pos(), int64_t(T));
    // The carried states agree too.
    for (size_t i = 0; i < pre.state().layers.size(); ++i) {
      if (auto* r = std::get_if<RecurrentState>(&pre.state().layers[i])) {
        auto& s = std::get<RecurrentState>(step.state().layers[i]);
        EXPECT_LE(MaxAbsDiff(r->h.data(), s.h.data(), s.h.size()), 1e-4) << "layer " << i;
        EXPECT_LE(MaxAbsDiff(r->conv.data(), s.conv.data(), s.conv.size()), 1e-4) << "layer " << i;
      } else {
        auto& a = std::get<AttentionState>(pre.state().layers[i]);
        auto& b = std::get<AttentionState>(step.state().layers[i]);
        EXPECT_LE(MaxAbsDiff(a.k.data(), b.k.data(), a.k.size()), 1e-4) << "layer " << i;
        EXPECT_LE(MaxAbsDiff(a.v.data(), b.v.data(), a.v.size()), 1e-4) << "layer " << i;
      }
    }
  }
}

TEST_F(PrefillDecode, ResetGivesTheSameLogitsAsAFreshSession) {
  const int64_t V = weights_->config.vocab_size;
  const auto a = RandomTokens(40, V, 1), b = RandomTokens(25, V, 2);
  Session s(weights_, pool_, 8);
  std::vector<float> first(b.size() * V), again(b.size() * V);
  s.ForwardAll(b, first.data());
  s.Reset();
  std::vector<float> other(a.size() * V);
  s.ForwardAll(a, other.data());  // some other history
  s.Reset();
  s.ForwardAll(b, again.data());
  EXPECT_EQ(first, again);  // bitwise: reset restores the initial state exactly
}

TEST_F(PrefillDecode, BatchedSequencesEqualSeparateRuns) {
  const int64_t V = weights_->config.vocab_size;
  // Three sequences at different positions and chunk lengths in one Forward call.
  std::vector<std::vector<int32_t>> prompts = {RandomTokens(30, V, 3), RandomTokens(5, V, 4),
                                               RandomTokens(50, V, 5)};
  std::vector<int32_t> next = {17, 250, 999};
  std::vector<int64_t> step_len = {1, 3, 2};

  // Separate runs: prompt, then the next tokens one call.
  std::vector<std::vector<float>> expect;
  for (size_t k = 0; k < prompts.size(); ++k) {
    Session s(weights_, pool_, 64);
    s.Prefill(prompts[k]);
    std::vector<int32_t> more(size_t(step_len[k]), next[k]);
    std::vector<float> out(more.size() * V);
    s.ForwardAll(more, out.data());
    expect.push_back(std::vector<float>(out.end() - V, out.end()));  // last row
  }

  // Batched: same prompts prefilled separately, then one Forward for all three.
  std::vector<State> states;
  Scratch scratch(weights_->config, 64, pool_);
  std::vector<float> ignore(static_cast<size_t>(V));
  for (auto& p : prompts) {
    states.emplace_back(weights_->config);
    SeqChunk ch{&states.back(), p.data(), int64_t(p.size()), LogitsWanted::kNone};
    Forward(*weights_, std::span<const SeqChunk>(&ch, 1), scratch, ignore.data());
  }
  std::vector<std::vector<int32_t>> more;
  std::vector<SeqChunk> chunks;
  for (size_t k = 0; k < prompts.size(); ++k) more.emplace_back(size_t(step_len[k]), next[k]);
  for (size_t k = 0; k < prompts.size(); ++k)
    chunks.push_back({&states[k], more[k].data(), step_len[k], LogitsWanted::kLast});
  ASSERT_EQ(LogitRows(chunks), 3);
  std::vector<float> got(3 * V);
  Forward(*weights_, chunks, scratch, got.data());
  for (size_t k = 0; k < prompts.size(); ++k) {
    // Different row counts take different kernels (GEMV / GEMM), which sum in a
    // different order: float noise only.
    EXPECT_LE(MaxAbsDiff(got.data() + k * V, expect[k].data(), size_t(V)), kPathTolerance) << "sequence " << k;
    EXPECT_EQ(states[k].pos, int64_t(prompts[k].size()) + step_len[k]);
  }
}

TEST_F(PrefillDecode, TokenOutsideVocabularyIsAnError) {
  Session s(weights_, pool_);
  std::vector<int32_t> bad = {2, 5, int32_t(weights_->config.vocab_size)};
  try {
    s.Prefill(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rg::test
