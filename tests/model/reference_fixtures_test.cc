// The engine against the official reference's outputs, for every fixture in
// tests/data/fixtures: prefill logits, cached-decode logits, greedy tokens,
// and per-block activations.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fixture_util.h"
#include "generate/session.h"
#include "sampling/sampler.h"

namespace rg::test {
namespace {

// The fixtures' README: f32 engines agree within 1e-3 (2e-3 when the soft cap
// is above 30); the reference's own parallel-vs-cached noise is <= 1.4e-4.
double LogitTolerance(const Config& c) { return c.logits_soft_cap > 30.f ? 2e-3 : 1e-3; }

class ReferenceFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<Fixture>(GetParam());
    weights_ = Weights::Load(GetParam());
    ASSERT_FALSE(fixture_->cases.empty()) << GetParam() << " has no tokens.<i> cases";
  }
  std::unique_ptr<Fixture> fixture_;
  std::shared_ptr<const Weights> weights_;
  ThreadPool pool_{2};
};

TEST_P(ReferenceFixture, PrefillLogitsMatchReference) {
  const int64_t V = weights_->config.vocab_size;
  for (int64_t chunk : {int64_t(256), int64_t(5)}) {  // one pass, and several chunks
    Session session(weights_, pool_, chunk);
    for (const FixtureCase& c : fixture_->cases) {
      ASSERT_NE(c.logits, nullptr);
      std::vector<float> got(c.tokens.size() * V);
      session.Reset();
      session.ForwardAll(c.tokens, got.data());
      const double diff = MaxAbsDiff(got.data(), static_cast<const float*>(c.logits->data), got.size());
      EXPECT_LE(diff, LogitTolerance(weights_->config))
          << fixture_->name << " case " << c.index << " chunk " << chunk;
    }
  }
}

TEST_P(ReferenceFixture, DecodeLogitsMatchReference) {
  const int64_t V = weights_->config.vocab_size;
  Session session(weights_, pool_, 1);
  for (const FixtureCase& c : fixture_->cases) {
    ASSERT_NE(c.decode_logits, nullptr);
    session.Reset();
    const float* expect = static_cast<const float*>(c.decode_logits->data);
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      const float* got = session.Step(c.tokens[t]);
      const double diff = MaxAbsDiff(got, expect + t * V, size_t(V));
      ASSERT_LE(diff, LogitTolerance(weights_->config))
          << fixture_->name << " case " << c.index << " position " << t;
    }
  }
}

TEST_P(ReferenceFixture, GreedyTokensMatchReference) {
  Session session(weights_, pool_);
  int checked = 0;
  for (const FixtureCase& c : fixture_->cases) {
    if (c.gen_tokens.empty()) continue;
    SamplingParams greedy;
    greedy.temperature = 0.f;
    Sampler sampler(greedy, int(weights_->config.vocab_size));
    session.Reset();
    const float* logits = session.Prefill(c.gen_prompt);
    std::vector<int32_t> got;
    for (size_t i = 0; i < c.gen_tokens.size(); ++i) {
      got.push_back(sampler.Sample(logits));
      logits = session.Step(got.back());
    }
    EXPECT_EQ(got, c.gen_tokens) << fixture_->name << " case " << c.index;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST_P(ReferenceFixture, BlockActivationsMatchReference) {
  Session session(weights_, pool_);
  for (const FixtureCase& c : fixture_->cases) {
    int compared = 0;
    session.scratch().tracer = [&](const std::string& name, const float* data, int64_t rows, int64_t cols) {
      const TensorView* ref = fixture_->Find("act." + c.index + "." + name);
      if (!ref) return;
      ASSERT_EQ(ref->numel(), rows * cols) << name;
      // Activations grow through the residual stream; compare relative to their scale.
      double scale = 1.0;
      const float* r = static_cast<const float*>(ref->data);
      for (int64_t i = 0; i < rows * cols; ++i) scale = std::max(scale, double(std::fabs(r[i])));
      EXPECT_LE(MaxAbsDiff(data, r, size_t(rows * cols)), 1e-4 * scale) << fixture_->name << " " << name;
      ++compared;
    };
    session.Reset();
    session.Prefill(c.tokens);
    session.scratch().tracer = nullptr;
    EXPECT_GE(compared, 2 + int(weights_->config.num_layers())) << "act.* tensors compared";
  }
}

INSTANTIATE_TEST_SUITE_P(All, ReferenceFixture, ::testing::ValuesIn(FixtureDirs()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           for (char& ch : n) if (!isalnum(uint8_t(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace rg::test
