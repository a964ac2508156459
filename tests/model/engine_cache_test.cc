// The engine's state cache on the reference fixture models: a request that
// resumes from a snapshot answers exactly what a cold engine answers (the
// same greedy tokens, log-probabilities within 1e-4), for every kind of
// snapshot (end of prompt, checkpoint, end of sequence), for conversations
// that run far past the attention window, prompts that share only a prefix,
// the same prefix asked for by many requests at once, a request cancelled
// mid-prefill, eviction under a tiny budget, and the disk tier across a
// restart.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>

#include "fixture_util.h"
#include "generate/disk_store.h"
#include "generate/engine.h"

namespace rg::test {
namespace {

namespace fs = std::filesystem;

// What one request produced.
struct Answer {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> lps, prompt_lps;
  Result result;
};

// Greedy, fixed length, with log-probabilities of the generated tokens.
Request Greedy(std::vector<int32_t> prompt, int64_t n) {
  Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = n;
  r.ignore_eos = true;
  r.logprobs = 2;
  return r;
}

// Submits all, waits for all.
std::vector<Answer> RunAll(Engine& e, std::vector<Request> reqs,
                           std::vector<std::shared_ptr<RequestHandle>>* handles = nullptr,
                           const std::function<void(size_t)>& after_first_token = {}) {
  std::vector<Answer> out(reqs.size());
  std::mutex mu;
  std::condition_variable cv;
  size_t left = reqs.size();
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].on_token = [&, i](int32_t id, const TokenLogprob* lp) {
      std::lock_guard<std::mutex> lk(mu);
      out[i].tokens.push_back(id);
      if (lp) out[i].lps.push_back(*lp);
      return true;
    };
    reqs[i].on_prompt_logprobs = [&, i](std::vector<TokenLogprob>&& lp) {
      std::lock_guard<std::mutex> lk(mu);
      out[i].prompt_lps = std::move(lp);
    };
    reqs[i].on_done = [&, i](const Result& r) {
      std::lock_guard<std::mutex> lk(mu);
      out[i].result = r;
      if (--left == 0) cv.notify_all();
    };
  }
  EXPECT_EQ(e.Submit(std::move(reqs), handles), Engine::Admission::kAccepted);
  std::unique_lock<std::mutex> lk(mu);
  EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(120), [&] { return left == 0; }));
  return out;
}

Answer RunOne(Engine& e, Request r) { return RunAll(e, {std::move(r)})[0]; }

void ExpectSameLogprobs(const std::vector<TokenLogprob>& a, const std::vector<TokenLogprob>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id) << what << " #" << i;
    EXPECT_NEAR(a[i].logprob, b[i].logprob, 1e-4) << what << " #" << i;
    ASSERT_EQ(a[i].top.size(), b[i].top.size()) << what;
    for (size_t k = 0; k < a[i].top.size(); ++k) EXPECT_NEAR(a[i].top[k].second, b[i].top[k].second, 1e-4) << what;
  }
}

void ExpectSameAnswer(const Answer& cached, const Answer& cold, const std::string& what) {
  EXPECT_EQ(cached.tokens, cold.tokens) << what;
  ExpectSameLogprobs(cached.lps, cold.lps, what + " (generated)");
  ExpectSameLogprobs(cached.prompt_lps, cold.prompt_lps, what + " (prompt)");
  EXPECT_EQ(cached.result.reason, cold.result.reason) << what;
}

std::vector<int32_t> RandomIds(std::mt19937& rng, int64_t vocab, size_t n) {
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = 3 + int32_t(rng() % uint32_t(vocab - 3));
  return t;
}

class EngineCache : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { weights_ = Weights::Load(GetParam()); }

  EngineOptions Cached(size_t bytes = 64u << 20) const {
    EngineOptions o;
    o.parallel = 4;
    o.prefill_chunk = 16;
    o.cache_bytes = bytes;
    o.checkpoint_every = 8;  // several checkpoints per prompt on these small models
    return o;
  }
  EngineOptions Cold() const {
    EngineOptions o;
    o.parallel = 1;
    return o;
  }
  int64_t V() const { return weights_->config.vocab_size; }
  int64_t W() const { return weights_->config.attention_window; }

  std::shared_ptr<const Weights> weights_;
  ThreadPool pool_{2};
};

// A conversation resent in full each turn: every turn after the first resumes
// from the end-of-sequence snapshot of the one before (the reply's last token
// included) and answers as a cold engine does, far past the window.
TEST_P(EngineCache, ResentConversationResumesExactlyPastTheWindow) {
  Engine cached(weights_, pool_, Cached()), cold(weights_, pool_, Cold());
  std::mt19937 rng(5);
  std::vector<int32_t> history = {2};
  int64_t total_cached = 0;
  for (int turn = 0; turn < 7; ++turn) {
    std::vector<int32_t> prompt = history;
    for (int32_t t : RandomIds(rng, V(), size_t(3 + W() / 2))) prompt.push_back(t);
    const Answer a = RunOne(cached, Greedy(prompt, 6)), b = RunOne(cold, Greedy(prompt, 6));
    ExpectSameAnswer(a, b, "turn " + std::to_string(turn));
    if (turn > 0) {
      EXPECT_EQ(a.result.cached_tokens, int64_t(history.size())) << "turn " << turn << " resumes after the last reply";
    }
    total_cached += a.result.cached_tokens;
    history = prompt;
    history.insert(history.end(), a.tokens.begin(), a.tokens.end());
  }
  EXPECT_GT(int64_t(history.size()), 3 * W()) << "the conversation runs past the window";
  EXPECT_GT(total_cached, 0);
}

// The same prompt again: the end-of-prompt snapshot (with its logits) covers
// all of it; the first token is sampled from the stored logits.
TEST_P(EngineCache, EndOfPromptSnapshotCoversARepeatedPrompt) {
  Engine cached(weights_, pool_, Cached()), cold(weights_, pool_, Cold());
  std::mt19937 rng(9);
  std::vector<int32_t> prompt = {2};
  for (int32_t t : RandomIds(rng, V(), size_t(2 * W() + 5))) prompt.push_back(t);
  const Answer first = RunOne(cached, Greedy(prompt, 5));
  const Answer again = RunOne(cached, Greedy(prompt, 9));
  EXPECT_EQ(again.result.cached_tokens, int64_t(prompt.size()));
  ExpectSameAnswer(again, RunOne(cold, Greedy(prompt, 9)), "repeated prompt");
  EXPECT_EQ(std::vector<int32_t>(again.tokens.begin(), again.tokens.begin() + 5), first.tokens);
}

// Two prompts that share only a prefix (same document, other question): the
// second resumes from the last checkpoint at or before the common prefix.
TEST_P(EngineCache, SharedPrefixResumesFromACheckpoint) {
  EngineOptions o = Cached();
  Engine cached(weights_, pool_, o), cold(weights_, pool_, Cold());
  std::mt19937 rng(11);
  std::vector<int32_t> doc = {2};
  for (int32_t t : RandomIds(rng, V(), 45)) doc.push_back(t);  // 46 tokens: checkpoints at 8 .. 40
  std::vector<int32_t> q1 = doc, q2 = doc;
  for (int32_t t : RandomIds(rng, V(), 6)) q1.push_back(t);
  for (int32_t t : RandomIds(rng, V(), 9)) q2.push_back(t);
  RunOne(cached, Greedy(q1, 4));
  const Answer a = RunOne(cached, Greedy(q2, 7));
  EXPECT_EQ(a.result.cached_tokens, 40);
  ExpectSameAnswer(a, RunOne(cold, Greedy(q2, 7)), "shared prefix");
}

// Prompt log-probabilities (echo): snapshots are used only up to the first
// scored token, so every scored value is still computed and equal.
TEST_P(EngineCache, PromptLogprobsAreEqualWithTheCache) {
  Engine cached(weights_, pool_, Cached()), cold(weights_, pool_, Cold());
  std::mt19937 rng(13);
  std::vector<int32_t> prompt = {2};
  for (int32_t t : RandomIds(rng, V(), 30)) prompt.push_back(t);
  RunOne(cached, Greedy(prompt, 3));  // leaves snapshots along the prompt
  for (int64_t from : {1, 17, 24}) {
    Request r = Greedy(prompt, 3);
    r.prompt_logprobs = 3;
    r.prompt_logprobs_from = from;
    Request c = r;
    const Answer a = RunOne(cached, std::move(r)), b = RunOne(cold, std::move(c));
    EXPECT_LE(a.result.cached_tokens, from);
    ExpectSameAnswer(a, b, "prompt logprobs from " + std::to_string(from));
    EXPECT_EQ(a.prompt_lps.size(), prompt.size() - size_t(from));
  }
}

// Many requests for the same prefix at once, and a request cancelled in the
// middle of its prefill: every answer is the cold one and the cache stays
// within its budget.
TEST_P(EngineCache, ConcurrentSamePrefixAndCancelledPrefill) {
  EngineOptions o = Cached();
  o.prefill_chunk = 4;  // a long prefill, so the cancel lands in the middle of it
  Engine cached(weights_, pool_, o), cold(weights_, pool_, Cold());
  std::mt19937 rng(17);
  std::vector<int32_t> prompt = {2};
  for (int32_t t : RandomIds(rng, V(), 60)) prompt.push_back(t);

  std::vector<Request> reqs;
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> p = prompt;
    for (int32_t t : RandomIds(rng, V(), size_t(1 + i))) p.push_back(t);
    reqs.push_back(Greedy(p, 5));
  }
  // The cancelled one goes first and is cancelled as soon as it runs.
  std::vector<Request> all;
  all.push_back(Greedy(prompt, 50));
  for (auto& r : reqs) all.push_back(r);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<Answer> got(all.size());
  {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = all.size();
    for (size_t i = 0; i < all.size(); ++i) {
      all[i].on_token = [&, i](int32_t id, const TokenLogprob* lp) {
        std::lock_guard<std::mutex> lk(mu);
        got[i].tokens.push_back(id);
        if (lp) got[i].lps.push_back(*lp);
        return true;
      };
      all[i].on_done = [&, i](const Result& r) {
        std::lock_guard<std::mutex> lk(mu);
        got[i].result = r;
        if (--left == 0) cv.notify_all();
      };
    }
    ASSERT_EQ(cached.Submit(std::move(all), &handles), Engine::Admission::kAccepted);
    cached.Cancel(*handles[0]);
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(120), [&] { return left == 0; }));
  }
  EXPECT_EQ(got[0].result.reason, FinishReason::kCancelled);
  for (size_t i = 0; i < reqs.size(); ++i)
    ExpectSameAnswer(got[i + 1], RunOne(cold, reqs[i]), "concurrent request " + std::to_string(i));
  // And again, now that the prefix is cached: the same answers.
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Answer a = RunOne(cached, reqs[i]);
    EXPECT_GE(a.result.cached_tokens, 56);
    ExpectSameAnswer(a, got[i + 1], "cached request " + std::to_string(i));
  }
  const StateCacheStats st = cached.cache()->Stats();
  EXPECT_LE(st.bytes, st.budget_bytes);
}

// A budget that holds about two snapshots, many conversations at once:
// snapshots are evicted while others resume from them; the answers do not change.
TEST_P(EngineCache, EvictionWhileResumingChangesNothing) {
  std::mt19937 rng(19);
  std::vector<int32_t> base = {2};
  for (int32_t t : RandomIds(rng, V(), size_t(W() + 9))) base.push_back(t);
  State probe(weights_->config);
  probe.pos = int64_t(base.size());
  const size_t one = Snapshot::Capture(probe, weights_->config, base, nullptr)->bytes() + size_t(V()) * 4;
  Engine cached(weights_, pool_, Cached(2 * one + one / 2)), cold(weights_, pool_, Cold());
  std::vector<Request> reqs;
  for (int i = 0; i < 12; ++i) {
    const size_t cut = std::min(base.size(), size_t(5 + i));
    std::vector<int32_t> p = i % 2 ? base : std::vector<int32_t>(base.begin(), base.begin() + long(cut));
    for (int32_t t : RandomIds(rng, V(), size_t(2 + i % 3))) p.push_back(t);
    reqs.push_back(Greedy(p, 4));
  }
  for (int round = 0; round < 2; ++round) {
    const std::vector<Answer> got = RunAll(cached, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      ExpectSameAnswer(got[i], RunOne(cold, reqs[i]), "round " + std::to_string(round) + " request " + std::to_string(i));
  }
  const StateCacheStats st = cached.cache()->Stats();
  EXPECT_GT(st.evictions, 0u);
  EXPECT_LE(st.bytes, st.budget_bytes);
}

// The disk tier: a new engine (empty memory) over the same directory resumes
// the conversation without running its history again.
TEST_P(EngineCache, DiskTierResumesAfterARestart) {
  const std::string dir = (fs::temp_directory_path() / ("rg_engine_disk_" + std::to_string(getpid()))).string();
  fs::remove_all(dir);
  std::mt19937 rng(23);
  std::vector<int32_t> prompt = {2};
  for (int32_t t : RandomIds(rng, V(), size_t(W() + 7))) prompt.push_back(t);
  std::vector<int32_t> next;
  {
    Engine e(weights_, pool_, Cached());
    e.cache()->AddStore(std::make_unique<DiskStore>(dir, 64u << 20, weights_->config, e.cache()->fingerprint()));
    const Answer a = RunOne(e, Greedy(prompt, 5));
    next = prompt;
    next.insert(next.end(), a.tokens.begin(), a.tokens.end());
    for (int32_t t : RandomIds(rng, V(), 4)) next.push_back(t);
    // Let the store thread write what was queued (the end-of-sequence snapshot last).
    for (int i = 0; i < 500 && e.cache()->Stats().stores[0].second.find("ok: 0 ") == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  {
    Engine e(weights_, pool_, Cached());
    e.cache()->AddStore(std::make_unique<DiskStore>(dir, 64u << 20, weights_->config, e.cache()->fingerprint()));
    const Answer b = RunOne(e, Greedy(next, 6));
    Engine cold(weights_, pool_, Cold());
    EXPECT_EQ(b.result.cached_tokens, int64_t(prompt.size() + 5)) << "resumed from the end-of-sequence snapshot on disk";
    ExpectSameAnswer(b, RunOne(cold, Greedy(next, 6)), "after restart");
    EXPECT_EQ(e.cache()->Stats().store_hits, 1u);
  }
  fs::remove_all(dir);
}

// Requests that opt out (cache_prompt: false) neither read nor write it.
TEST_P(EngineCache, OptOutSkipsLookupAndInsert) {
  Engine cached(weights_, pool_, Cached());
  std::vector<int32_t> prompt = {2, 10, 11, 12, 13};
  Request r = Greedy(prompt, 3);
  r.cache = false;
  Request again = r;
  RunOne(cached, std::move(r));
  EXPECT_EQ(cached.cache()->Stats().entries, 0u);
  EXPECT_EQ(RunOne(cached, std::move(again)).result.cached_tokens, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineCache, ::testing::ValuesIn(FixtureDirs()), [](const auto& info) {
  std::string n = fs::path(info.param).filename().string();
  for (char& ch : n)
    if (!isalnum(uint8_t(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace rg::test
