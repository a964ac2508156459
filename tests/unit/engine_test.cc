// The generation engine (generate/engine.h), driven directly (no HTTP) on the
// reference fixture models: batched output equals the reference and the
// request run alone; prompt log-probabilities equal log-softmax of the
// reference logits; cancellation, queue bound, draining and chunked prefill;
// and the server's Job built on it.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "io/safetensors.h"
#include "server/job.h"
#include "generate/engine.h"
#include "server/completions.h"

namespace rg::server {
namespace {

std::string FixtureDir(const std::string& name) { return std::string(RG_TEST_DATA) + "/fixtures/" + name; }

std::vector<int32_t> ReadI32(const TensorView& tv) {
  std::vector<int32_t> v(size_t(tv.numel()));
  std::memcpy(v.data(), tv.data, v.size() * 4);
  return v;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> lps, prompt_lps;
  Result result;
  bool done = false;
  int done_calls = 0;
};

// Wires Requests to Outcomes and waits for them.
class Collector {
 public:
  explicit Collector(size_t n) : out_(n) {}
  Request Wire(Request r, size_t i, std::function<bool(size_t)> keep_going = {}) {
    r.on_token = [this, i, keep_going](int32_t id, const TokenLogprob* lp) {
      std::lock_guard<std::mutex> lk(mu_);
      out_[i].tokens.push_back(id);
      if (lp) out_[i].lps.push_back(*lp);
      cv_.notify_all();
      return keep_going ? keep_going(out_[i].tokens.size()) : true;
    };
    r.on_prompt_logprobs = [this, i](std::vector<TokenLogprob>&& lp) {
      std::lock_guard<std::mutex> lk(mu_);
      out_[i].prompt_lps = std::move(lp);
    };
    r.on_done = [this, i](const Result& res) {
      std::lock_guard<std::mutex> lk(mu_);
      out_[i].result = res;
      out_[i].done = true;
      ++out_[i].done_calls;
      cv_.notify_all();
    };
    return r;
  }
  bool WaitAll(double seconds = 60) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, std::chrono::duration<double>(seconds), [&] {
      for (const Outcome& o : out_)
        if (!o.done) return false;
      return true;
    });
  }
  bool WaitTokens(size_t i, size_t n, double seconds = 60) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, std::chrono::duration<double>(seconds),
                        [&] { return out_[i].tokens.size() >= n || out_[i].done; });
  }
  Outcome Get(size_t i) {
    std::lock_guard<std::mutex> lk(mu_);
    return out_[i];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> out_;
};

Request Greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

Request Sampled(std::vector<int32_t> prompt, int64_t max_tokens, uint64_t seed, float temp) {
  Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = temp;
  r.sampling.top_k = 0;
  r.sampling.top_p = 0.95f;
  r.sampling.min_p = 0.0f;
  r.sampling.seed = seed;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int64_t vocab, int len) {
  std::vector<int32_t> p = {2};
  for (int i = 1; i < len; ++i) p.push_back(int32_t(rng() % uint32_t(vocab - 3)) + 3);
  return p;
}

// Runs each request alone (one at a time on a 1-slot engine).
std::vector<Outcome> RunAlone(std::shared_ptr<const Weights> w, ThreadPool& pool, const std::vector<Request>& reqs) {
  EngineOptions o;
  o.parallel = 1;
  Engine s(w, pool, o);
  std::vector<Outcome> out;
  for (const Request& r : reqs) {
    Collector c(1);
    EXPECT_EQ(s.Submit({c.Wire(r, 0)}, nullptr), Engine::Admission::kAccepted);
    EXPECT_TRUE(c.WaitAll());
    out.push_back(c.Get(0));
  }
  return out;
}

std::vector<Outcome> RunTogether(Engine& s, const std::vector<Request>& reqs) {
  Collector c(reqs.size());
  std::vector<Request> wired;
  for (size_t i = 0; i < reqs.size(); ++i) wired.push_back(c.Wire(reqs[i], i));
  EXPECT_EQ(s.Submit(std::move(wired), nullptr), Engine::Admission::kAccepted);
  EXPECT_TRUE(c.WaitAll());
  std::vector<Outcome> out;
  for (size_t i = 0; i < reqs.size(); ++i) out.push_back(c.Get(i));
  return out;
}

class EngineFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    weights_ = Weights::Load(FixtureDir(GetParam()));
    expected_ = SafetensorsFile::Open(FixtureDir(GetParam()) + "/expected.safetensors");
  }
  std::shared_ptr<const Weights> weights_;
  std::unique_ptr<SafetensorsFile> expected_;
  ThreadPool pool_{2};
};

TEST_P(EngineFixtureTest, BatchedGreedyMatchesReferenceTokens) {
  std::vector<Request> reqs;
  std::vector<std::vector<int32_t>> expect;
  for (int i = 0; i < 64; ++i) {
    const TensorView* p = expected_->Find("gen_prompt." + std::to_string(i));
    const TensorView* g = expected_->Find("gen_tokens." + std::to_string(i));
    if (!p || !g) continue;
    expect.push_back(ReadI32(*g));
    reqs.push_back(Greedy(ReadI32(*p), int64_t(expect.back().size())));
  }
  ASSERT_FALSE(reqs.empty());
  // Mixed with other traffic, a tiny prefill chunk (prompts interleave with
  // decoding) and fewer slots than sequences (some wait in the queue).
  std::mt19937 rng(7);
  const size_t n_ref = reqs.size();
  for (int i = 0; i < 6; ++i) reqs.push_back(Greedy(RandomPrompt(rng, weights_->config.vocab_size, 5 + i * 3), 9));
  EngineOptions o;
  o.parallel = 4;
  o.prefill_chunk = 3;
  Engine s(weights_, pool_, o);
  const std::vector<Outcome> got = RunTogether(s, reqs);
  for (size_t i = 0; i < n_ref; ++i) {
    EXPECT_EQ(got[i].tokens, expect[i]) << GetParam() << " case " << i;
    EXPECT_EQ(got[i].result.reason, FinishReason::kLength);
    EXPECT_EQ(got[i].result.generated_tokens, int64_t(expect[i].size()));
    EXPECT_EQ(got[i].done_calls, 1);
  }
  ASSERT_TRUE(s.Drain(30));  // slots are released just after on_done
  const EngineStats st = s.Stats();
  EXPECT_EQ(st.slots_busy, 0);
  EXPECT_EQ(st.queued, 0);
  EXPECT_EQ(st.completed, reqs.size());
}

TEST_P(EngineFixtureTest, OutputDoesNotDependOnBatching) {
  std::mt19937 rng(11);
  std::vector<Request> reqs;
  for (int i = 0; i < 12; ++i) {
    auto p = RandomPrompt(rng, weights_->config.vocab_size, 3 + (i * 7) % 20);
    if (i % 3 == 0) reqs.push_back(Greedy(p, 12 + i));
    else reqs.push_back(Sampled(p, 12 + i, 1000 + i, 0.7f + 0.05f * float(i)));
  }
  reqs[4].sampling.repeat_penalty = 1.3f;
  reqs[5].sampling.frequency_penalty = 0.5f;
  reqs[5].sampling.presence_penalty = 0.3f;
  reqs[7].sampling.top_k = 5;
  const std::vector<Outcome> alone = RunAlone(weights_, pool_, reqs);
  for (int parallel : {3, 8}) {
    EngineOptions o;
    o.parallel = parallel;
    o.prefill_chunk = 5;
    Engine s(weights_, pool_, o);
    const std::vector<Outcome> together = RunTogether(s, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(together[i].tokens, alone[i].tokens) << "request " << i << " parallel " << parallel;
  }
}

TEST_P(EngineFixtureTest, PromptLogprobsEqualLogSoftmaxOfReferenceLogits) {
  const int64_t V = weights_->config.vocab_size;
  std::vector<Request> reqs;
  std::vector<const TensorView*> logits;
  for (int i = 0; i < 64; ++i) {
    const TensorView* t = expected_->Find("tokens." + std::to_string(i));
    const TensorView* l = expected_->Find("logits." + std::to_string(i));
    if (!t || !l) continue;
    Request r = Greedy(ReadI32(*t), 0);
    r.prompt_logprobs = 5;
    reqs.push_back(std::move(r));
    logits.push_back(l);
  }
  ASSERT_FALSE(reqs.empty());
  // Also with decoding neighbours and a logits chunk that splits prompts.
  std::mt19937 rng(3);
  const size_t n_ref = reqs.size();
  for (int i = 0; i < 3; ++i) reqs.push_back(Greedy(RandomPrompt(rng, V, 4), 20));
  EngineOptions o;
  o.parallel = 3;
  o.logits_chunk = 3;
  o.prefill_chunk = 7;
  Engine s(weights_, pool_, o);
  const std::vector<Outcome> got = RunTogether(s, reqs);
  for (size_t c = 0; c < n_ref; ++c) {
    const std::vector<int32_t>& toks = reqs[c].prompt;
    const float* ref = static_cast<const float*>(logits[c]->data);
    ASSERT_EQ(got[c].prompt_lps.size(), toks.size() - 1) << "case " << c;
    EXPECT_TRUE(got[c].tokens.empty());
    EXPECT_EQ(got[c].result.reason, FinishReason::kLength);
    for (size_t t = 1; t < toks.size(); ++t) {
      const float* row = ref + (t - 1) * V;
      double mx = -1e30, sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
      const double lse = mx + std::log(sum);
      const TokenLogprob& lp = got[c].prompt_lps[t - 1];
      EXPECT_EQ(lp.id, toks[t]);
      EXPECT_NEAR(lp.logprob, double(row[toks[t]]) - lse, 1e-3) << "case " << c << " token " << t;
      ASSERT_EQ(lp.top.size(), 5u);
      for (size_t k = 0; k < lp.top.size(); ++k) {
        EXPECT_NEAR(lp.top[k].second, double(row[lp.top[k].first]) - lse, 1e-3);
        if (k) {
          EXPECT_GE(lp.top[k - 1].second, lp.top[k].second);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineFixtureTest, ::testing::Values("tiny", "small"));

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { weights_ = Weights::Load(FixtureDir("tiny")); }
  std::shared_ptr<const Weights> weights_;
  ThreadPool pool_{2};
  std::vector<int32_t> prompt_ = {2, 17, 33, 4, 99};
};

TEST_F(EngineTest, ComputeLogprobIsLogSoftmaxWithSortedTop) {
  const float row[6] = {1.f, 3.f, 3.f, -2.f, 0.5f, 2.f};
  double sum = 0;
  for (float x : row) sum += std::exp(double(x));
  const TokenLogprob lp = ComputeLogprob(row, 6, 4, 3);
  EXPECT_EQ(lp.id, 4);
  EXPECT_NEAR(lp.logprob, 0.5 - std::log(sum), 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);  // ties: lower id first
  EXPECT_EQ(lp.top[1].first, 2);
  EXPECT_EQ(lp.top[2].first, 5);
  EXPECT_EQ(ComputeLogprob(row, 6, 0, 0).top.size(), 0u);
}

TEST_F(EngineTest, GeneratedLogprobsOfGreedyTokensAreTheTopEntry) {
  EngineOptions o;
  Engine s(weights_, pool_, o);
  Request r = Greedy(prompt_, 8);
  r.logprobs = 3;
  const Outcome got = RunTogether(s, {r})[0];
  ASSERT_EQ(got.lps.size(), 8u);
  for (size_t k = 0; k < 8; ++k) {
    EXPECT_EQ(got.lps[k].id, got.tokens[k]);
    ASSERT_EQ(got.lps[k].top.size(), 3u);
    EXPECT_EQ(got.lps[k].top[0].first, got.tokens[k]);
    EXPECT_EQ(got.lps[k].top[0].second, got.lps[k].logprob);  // bit-identical: the same computation
    EXPECT_LE(got.lps[k].logprob, 0.f);
  }
}

TEST_F(EngineTest, CallbackStopAndStopIds) {
  EngineOptions o;
  Engine s(weights_, pool_, o);
  const Outcome full = RunTogether(s, {Greedy(prompt_, 10)})[0];
  ASSERT_EQ(full.tokens.size(), 10u);

  Collector c(1);
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 10), 0, [](size_t n) { return n < 3; })}, nullptr),
            Engine::Admission::kAccepted);
  ASSERT_TRUE(c.WaitAll());
  EXPECT_EQ(c.Get(0).tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + 3));
  EXPECT_EQ(c.Get(0).result.reason, FinishReason::kCallback);

  // The first occurrence of a stop id ends the sequence; the stop id is not emitted.
  const int32_t stop = full.tokens[4];
  size_t first = 0;
  while (full.tokens[first] != stop) ++first;
  Request r = Greedy(prompt_, 10);
  r.stop_ids = {stop};
  const Outcome stopped = RunTogether(s, {r})[0];
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + long(first)));
  EXPECT_EQ(stopped.result.reason, FinishReason::kStop);
  EXPECT_EQ(stopped.result.stop_token, stop);
}

TEST_F(EngineTest, MaxTokensZeroFinishesWithoutASlot) {
  EngineOptions o;
  Engine s(weights_, pool_, o);
  const Outcome got = RunTogether(s, {Greedy(prompt_, 0)})[0];
  EXPECT_TRUE(got.tokens.empty());
  EXPECT_EQ(got.result.reason, FinishReason::kLength);
  EXPECT_EQ(got.result.prompt_tokens, 5);
  EXPECT_EQ(s.Stats().steps, 0u);
}

TEST_F(EngineTest, InvalidRequestsThrowAndQueueNothing) {
  EngineOptions o;
  Engine s(weights_, pool_, o);
  EXPECT_THROW(s.Submit({Greedy({}, 3)}, nullptr), rg::Error);
  EXPECT_THROW(s.Submit({Greedy({2, 512}, 3)}, nullptr), rg::Error);
  EXPECT_THROW(s.Submit({Greedy({2, -1}, 3)}, nullptr), rg::Error);
  Request bad = Greedy(prompt_, 3);
  bad.sampling.top_p = 2;
  EXPECT_THROW(s.Submit({Greedy(prompt_, 3), bad}, nullptr), rg::Error);
  Request many = Greedy(prompt_, 3);
  many.logprobs = 1000;
  EXPECT_THROW(s.Submit({many}, nullptr), rg::Error);
  EXPECT_EQ(s.Stats().submitted, 0u);
}

TEST_F(EngineTest, CancelFreesTheSlot) {
  EngineOptions o;
  o.parallel = 2;
  Engine s(weights_, pool_, o);
  for (int round = 0; round < 20; ++round) {
    Collector c(3);
    std::vector<std::shared_ptr<RequestHandle>> h;
    ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 1 << 20), 0), c.Wire(Greedy(prompt_, 1 << 20), 1),
                        c.Wire(Greedy(prompt_, 1 << 20), 2)},
                       &h),
              Engine::Admission::kAccepted);
    ASSERT_EQ(h.size(), 3u);
    ASSERT_TRUE(c.WaitTokens(0, 2));
    s.Cancel(*h[2]);  // waiting in the queue
    s.Cancel(*h[0]);  // running
    s.Cancel(*h[1]);
    s.Cancel(*h[1]);  // twice is fine
    ASSERT_TRUE(c.WaitAll());
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(c.Get(i).result.reason, FinishReason::kCancelled);
      EXPECT_EQ(c.Get(i).done_calls, 1);
    }
    s.Cancel(*h[0]);  // after it finished
  }
  // The slots are usable again.
  EXPECT_EQ(RunTogether(s, {Greedy(prompt_, 6), Greedy(prompt_, 6)})[1].tokens.size(), 6u);
  ASSERT_TRUE(s.Drain(30));
  const EngineStats st = s.Stats();
  EXPECT_EQ(st.slots_busy, 0);
  EXPECT_EQ(st.queued, 0);
  EXPECT_EQ(st.cancelled, 60u);
}

TEST_F(EngineTest, SlotsAreResetBetweenSequences) {
  EngineOptions o;
  o.parallel = 1;
  Engine s(weights_, pool_, o);
  const Outcome a = RunTogether(s, {Greedy(prompt_, 7)})[0];
  RunTogether(s, {Greedy({2, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409}, 30)});
  const Outcome b = RunTogether(s, {Greedy(prompt_, 7)})[0];
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST_F(EngineTest, FullQueueRefusesAllOrNothing) {
  EngineOptions o;
  o.parallel = 1;
  o.max_queue = 2;
  Engine s(weights_, pool_, o);
  Collector c(4);
  std::vector<std::shared_ptr<RequestHandle>> h1, h2, h3;
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 1 << 20), 0)}, &h1), Engine::Admission::kAccepted);
  ASSERT_TRUE(c.WaitTokens(0, 1));  // it holds the only slot
  // Two may wait; three may not, and then none of them is queued.
  EXPECT_EQ(s.Submit({Greedy(prompt_, 3), Greedy(prompt_, 3), Greedy(prompt_, 3)}, nullptr),
            Engine::Admission::kQueueFull);
  EXPECT_EQ(s.Stats().queued, 0);
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 3), 1), c.Wire(Greedy(prompt_, 3), 2)}, &h2),
            Engine::Admission::kAccepted);
  EXPECT_EQ(s.Submit({c.Wire(Greedy(prompt_, 3), 3)}, &h3), Engine::Admission::kQueueFull);
  EXPECT_EQ(s.Stats().rejected, 4u);
  s.Cancel(*h1[0]);
  ASSERT_TRUE(c.WaitTokens(2, 3));
  EXPECT_TRUE(s.Drain(30));
  EXPECT_EQ(c.Get(1).tokens.size(), 3u);
  EXPECT_EQ(c.Get(2).tokens.size(), 3u);
}

TEST_F(EngineTest, DrainFinishesInFlightAndRefusesNew) {
  EngineOptions o;
  o.parallel = 2;
  Engine s(weights_, pool_, o);
  Collector c(3);
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 40), 0), c.Wire(Greedy(prompt_, 30), 1), c.Wire(Greedy(prompt_, 20), 2)},
                     nullptr),
            Engine::Admission::kAccepted);
  EXPECT_TRUE(s.Drain(60));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(c.Get(i).result.reason, FinishReason::kLength);
  EXPECT_EQ(c.Get(0).tokens.size(), 40u);
  EXPECT_EQ(s.Submit({Greedy(prompt_, 3)}, nullptr), Engine::Admission::kDraining);
  EXPECT_TRUE(s.Stats().draining);
}

TEST_F(EngineTest, DestructionCancelsWhatIsLeft) {
  Collector c(3);
  {
    EngineOptions o;
    o.parallel = 1;
    Engine s(weights_, pool_, o);
    ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 1 << 20), 0), c.Wire(Greedy(prompt_, 5), 1),
                        c.Wire(Greedy(prompt_, 5), 2)},
                       nullptr),
              Engine::Admission::kAccepted);
    ASSERT_TRUE(c.WaitTokens(0, 3));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(c.Get(i).done);
    EXPECT_EQ(c.Get(i).result.reason, FinishReason::kCancelled);
  }
}

TEST_F(EngineTest, CancelAll) {
  EngineOptions o;
  o.parallel = 1;
  Engine s(weights_, pool_, o);
  Collector c(2);
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, 1 << 20), 0), c.Wire(Greedy(prompt_, 1 << 20), 1)}, nullptr),
            Engine::Admission::kAccepted);
  ASSERT_TRUE(c.WaitTokens(0, 2));
  s.CancelAll();
  ASSERT_TRUE(c.WaitAll());
  EXPECT_EQ(c.Get(0).result.reason, FinishReason::kCancelled);
  EXPECT_EQ(c.Get(1).result.reason, FinishReason::kCancelled);
  // Still serving afterwards.
  EXPECT_EQ(RunTogether(s, {Greedy(prompt_, 4)})[0].tokens.size(), 4u);
}

TEST_F(EngineTest, LongPromptIsChunkedAndDoesNotStallDecoding) {
  EngineOptions o;
  o.parallel = 2;
  o.prefill_chunk = 4;
  Engine s(weights_, pool_, o);
  Collector c(2);
  // A is long enough to still be decoding while B's 21 prefill steps run.
  constexpr size_t kLenA = 5000;
  ASSERT_EQ(s.Submit({c.Wire(Greedy(prompt_, kLenA), 0)}, nullptr), Engine::Admission::kAccepted);
  ASSERT_TRUE(c.WaitTokens(0, 1));
  std::vector<int32_t> long_prompt = {2};
  for (int i = 0; i < 80; ++i) long_prompt.push_back(3 + (i * 37) % 500);
  // Record how many tokens the first sequence has when the second produces its first.
  std::atomic<size_t> a_at_b_first{0};
  Request b = c.Wire(Greedy(long_prompt, 1), 1);
  auto inner = b.on_token;
  b.on_token = [&, inner](int32_t id, const TokenLogprob* lp) {
    // Runs on the engine thread, between steps' callbacks: A's count is stable.
    a_at_b_first = c.Get(0).tokens.size();
    return inner(id, lp);
  };
  const size_t a_before = c.Get(0).tokens.size();
  ASSERT_LT(a_before + 81 / 4, kLenA) << "A finished too early for this test to mean anything";
  ASSERT_EQ(s.Submit({std::move(b)}, nullptr), Engine::Admission::kAccepted);
  ASSERT_TRUE(c.WaitTokens(1, 1));
  // 81 prompt tokens at <= 4 per step: the first sequence decoded meanwhile.
  EXPECT_GE(a_at_b_first.load(), a_before + 81 / 4 - 1);
  ASSERT_TRUE(c.WaitAll());
  // And the long prompt's result is what it is alone.
  EXPECT_EQ(c.Get(1).tokens, RunAlone(weights_, pool_, {Greedy(long_prompt, 1)})[0].tokens);
}

// Job: the OpenAI JSON built from engine callbacks (no HTTP), on a model
// without a tokenizer.
TEST_F(EngineTest, JobBuildsCompletionJsonWithEchoLogprobs) {
  Config cfg = weights_->config;
  ModelInfo m;
  m.id = "tiny";
  m.config = &cfg;
  ParsedRequest pr;
  pr.prompts = {prompt_};
  pr.prompt_texts = {""};
  pr.n = 2;
  pr.max_tokens = 3;
  pr.sampling.temperature = 0;
  pr.echo = true;
  pr.logprobs = 2;
  pr.return_tokens = true;
  pr.ignore_eos = true;
  EngineOptions o;
  Engine s(weights_, pool_, o);
  auto job = Job::Create(pr, m, CompletionShape(m));
  std::vector<std::shared_ptr<RequestHandle>> h;
  ASSERT_EQ(s.Submit(job->MakeRequests(), &h), Engine::Admission::kAccepted);
  job->SetHandles(h);
  while (!job->WaitFor(10)) {
  }
  const auto [status, body] = job->FinalResponse();
  ASSERT_EQ(status, 200) << body;
  const json j = json::parse(body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 2u);
  for (int c = 0; c < 2; ++c) {
    const json& ch = j["choices"][c];
    EXPECT_EQ(ch["index"], c);
    EXPECT_EQ(ch["text"], "");
    EXPECT_EQ(ch["finish_reason"], "length");
    EXPECT_EQ(ch["tokens"].size(), 3u);
    const json& lp = ch["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), prompt_.size() + 3);
    EXPECT_EQ(lp["tokens"][0], "token_id:2");
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    for (size_t t = 1; t < prompt_.size() + 3; ++t) {
      EXPECT_TRUE(lp["token_logprobs"][t].is_number());
      EXPECT_GE(lp["top_logprobs"][t].size(), 2u);
    }
  }
  EXPECT_EQ(j["choices"][0]["tokens"], j["choices"][1]["tokens"]);  // greedy
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
  EXPECT_EQ(j["usage"]["total_tokens"], 11);
}

TEST_F(EngineTest, JobStreamsSseEndingWithDone) {
  Config cfg = weights_->config;
  ModelInfo m;
  m.id = "tiny";
  m.config = &cfg;
  ParsedRequest pr;
  pr.prompts = {prompt_};
  pr.prompt_texts = {""};
  pr.max_tokens = 4;
  pr.sampling.temperature = 0;
  pr.stream = true;
  pr.return_tokens = true;
  pr.ignore_eos = true;
  EngineOptions o;
  Engine s(weights_, pool_, o);
  auto job = Job::Create(pr, m, CompletionShape(m));
  ASSERT_EQ(s.Submit(job->MakeRequests(), nullptr), Engine::Admission::kAccepted);
  std::string all;
  while (!job->WaitFor(10)) all += job->TakeStreamBytes();
  all += job->TakeStreamBytes();
  ASSERT_GE(all.size(), 14u);
  EXPECT_EQ(all.substr(all.size() - 14), "data: [DONE]\n\n");
  std::vector<int32_t> ids;
  size_t pos = 0;
  int finish = 0, usage = 0;
  while ((pos = all.find("data: {", pos)) != std::string::npos) {
    const size_t end = all.find("\n\n", pos);
    const json chunk = json::parse(all.substr(pos + 6, end - pos - 6));
    for (int32_t id : chunk["choices"][0]["tokens"]) ids.push_back(id);
    if (!chunk["choices"][0]["finish_reason"].is_null()) ++finish;
    if (chunk.contains("usage")) ++usage;
    pos = end;
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(finish, 1);
  EXPECT_EQ(usage, 1);
}

}  // namespace
}  // namespace rg::server
