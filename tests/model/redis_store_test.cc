// The state cache's Redis tier against a real redis-server: a conversation
// started on one engine (a replica) resumes on another with an empty memory,
// exactly; values that are not a valid snapshot of this model (truncated,
// another model's, garbage, a huge length field, larger than any state) are
// never loaded; Redis down at start or going away later costs hits, never a
// request, and hits resume when it is back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "fixture_util.h"
#include "generate/engine.h"
#include "generate/redis_store.h"
#include "redis_server.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;

struct Answer {
  std::vector<int32_t> tokens;
  Result result;
};

Answer Gen(Engine& e, std::vector<int32_t> prompt, int64_t n = 5) {
  Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = n;
  r.ignore_eos = true;
  Answer a;
  r.on_token = [&](int32_t id, const TokenLogprob*) {
    a.tokens.push_back(id);
    return true;
  };
  a.result = e.Run(std::move(r));
  return a;
}

class RedisTier : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_ = Weights::Load(std::string(RG_TEST_DATA) + "/fixtures/small");
    ASSERT_TRUE(redis_.Start()) << "redis-server did not start (scripts/install-deps.sh installs it)";
  }

  // A replica: an engine with an empty memory cache and the Redis tier.
  std::unique_ptr<Engine> Replica() {
    EngineOptions o;
    o.parallel = 2;
    o.cache_bytes = 64u << 20;
    o.checkpoint_every = 8;
    auto e = std::make_unique<Engine>(weights_, pool_, o);
    e->cache()->AddStore(std::make_unique<RedisStore>(redis_.url(), 0, weights_->config, e->cache()->fingerprint()));
    return e;
  }
  // Waits until the replica's queued inserts are in Redis (the key count
  // stops changing).
  void Flush(Engine&) {
    size_t last = KeyCount(), same = 0;
    for (int i = 0; i < 300 && same < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      const size_t n = KeyCount();
      same = n == last ? same + 1 : 0;
      last = n;
    }
  }
  size_t KeyCount() {
    redisContext* c = redisConnect("127.0.0.1", redis_.port());
    if (!c || c->err) return 0;
    auto* r = static_cast<redisReply*>(redisCommand(c, "DBSIZE"));
    const size_t n = r && r->type == REDIS_REPLY_INTEGER ? size_t(r->integer) : 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
  }
  // Replaces everything in Redis with this one value.
  void Set(const std::string& key, const std::string& value) {
    redisContext* c = redisConnect("127.0.0.1", redis_.port());
    ASSERT_TRUE(c && !c->err);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    auto* r = static_cast<redisReply*>(redisCommand(c, "SET %s %b", key.c_str(), value.data(), value.size()));
    ASSERT_TRUE(r && r->type != REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(c);
  }
  std::vector<int32_t> Prompt(uint32_t seed, size_t n = 20) {
    std::mt19937 rng(seed);
    std::vector<int32_t> p = {2};
    for (size_t i = 1; i < n; ++i) p.push_back(3 + int32_t(rng() % 900));
    return p;
  }

  std::shared_ptr<const Weights> weights_;
  ThreadPool pool_{2};
  RedisServer redis_;
};

TEST_F(RedisTier, AnyReplicaResumesAnyConversation) {
  EngineOptions cold_opt;
  Engine cold(weights_, pool_, cold_opt);
  std::vector<int32_t> history = Prompt(1);
  auto a = Replica(), b = Replica(), c = Replica();
  Engine* replicas[3] = {a.get(), b.get(), c.get()};
  for (int turn = 0; turn < 6; ++turn) {
    Engine& e = *replicas[turn % 3];  // round robin: never the replica of the turn before
    const Answer got = Gen(e, history), want = Gen(cold, history);
    EXPECT_EQ(got.tokens, want.tokens) << "turn " << turn;
    if (turn > 0) {
      EXPECT_GE(got.result.cached_tokens, int64_t(history.size()) - 3) << "turn " << turn;
    }
    history.insert(history.end(), got.tokens.begin(), got.tokens.end());
    for (int32_t t : {40, 41, 42}) history.push_back(t);
    Flush(e);
  }
  EXPECT_GT(b->cache()->Stats().store_hits, 0u);
}

TEST_F(RedisTier, BadValuesAreNeverLoaded) {
  const std::vector<int32_t> p = Prompt(2);
  const ModelFingerprint fp = FingerprintOf(*weights_);
  const Config& cfg = weights_->config;
  // A valid snapshot of p[0..16) to corrupt in several ways.
  State s(cfg);
  {
    EngineOptions o;
    Engine e(weights_, pool_, o);
    Request r;
    r.prompt.assign(p.begin(), p.begin() + 16);
    r.state = &s;
    r.max_tokens = 0;
    e.Run(std::move(r));
  }
  const std::vector<int32_t> head(p.begin(), p.begin() + 16);
  const std::string valid = Snapshot::Capture(s, cfg, head, nullptr)->Serialize(cfg, fp);
  ModelFingerprint other = fp;
  other.weights ^= 1;
  std::string huge = valid;
  const uint64_t n = uint64_t(1) << 60;
  std::memcpy(huge.data() + 64, &n, 8);  // n_tokens (the checksum no longer matches either)
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"truncated", valid.substr(0, valid.size() / 2)},
      {"another model", Snapshot::Capture(s, cfg, head, nullptr)->Serialize(cfg, other)},
      {"garbage", std::string(4000, 'x')},
      {"huge length field", huge},
      {"other tokens", Snapshot::Capture(s, cfg, std::vector<int32_t>(16, 7), nullptr)->Serialize(cfg, fp)},
  };
  EngineOptions cold_opt;
  Engine cold(weights_, pool_, cold_opt);
  const Answer want = Gen(cold, p);
  for (const auto& [what, value] : bad) {
    SCOPED_TRACE(what);
    Set(StoreKey(fp, head), value);
    ::testing::internal::CaptureStderr();
    Answer got;
    {
      EngineOptions o;
      o.cache_bytes = 64u << 20;
      o.checkpoint_every = 16;  // probes exactly the corrupted key
      Engine r(weights_, pool_, o);
      r.cache()->AddStore(std::make_unique<RedisStore>(redis_.url(), 0, cfg, r.cache()->fingerprint()));
      got = Gen(r, p);
    }
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.result.cached_tokens, 0) << log;
    EXPECT_THAT(log, HasSubstr("skipped"));
  }
  // Larger than any state of this model: not even read.
  Set(StoreKey(fp, head), std::string(MaxStateFileBytes(cfg) + 1, 'y'));
  ::testing::internal::CaptureStderr();
  {
    EngineOptions o;
    o.cache_bytes = 64u << 20;
    o.checkpoint_every = 16;
    Engine r(weights_, pool_, o);
    r.cache()->AddStore(std::make_unique<RedisStore>(redis_.url(), 0, cfg, r.cache()->fingerprint()));
    EXPECT_EQ(Gen(r, p).tokens, want.tokens);
  }
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("more than a state of this model can be"));
}

TEST_F(RedisTier, AnOutageCostsHitsNeverRequests) {
  EngineOptions cold_opt;
  Engine cold(weights_, pool_, cold_opt);
  redis_.Stop();
  ::testing::internal::CaptureStderr();
  auto a = Replica(), b = Replica();  // Redis down at start
  std::vector<int32_t> p = Prompt(3);
  const Answer first = Gen(*a, p);
  EXPECT_EQ(first.tokens, Gen(cold, p).tokens);
  EXPECT_THAT(a->cache()->Stats().stores[0].second, HasSubstr("down since"));
  // Back: the replicas reconnect (the pause is under a second at first).
  ASSERT_TRUE(redis_.Start());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  p.insert(p.end(), first.tokens.begin(), first.tokens.end());
  Gen(*a, p);  // its snapshots now reach Redis
  Flush(*a);
  std::vector<int32_t> q = p;
  for (int32_t t : {50, 51}) q.push_back(t);
  const Answer resumed = Gen(*b, q);
  EXPECT_GT(resumed.result.cached_tokens, 0);
  EXPECT_EQ(resumed.tokens, Gen(cold, q).tokens);
  // Going away again mid-run: still answered.
  redis_.Stop();
  q.push_back(60);
  EXPECT_EQ(Gen(*b, q).tokens, Gen(cold, q).tokens);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("unavailable"));
  EXPECT_THAT(log, HasSubstr("back"));
}

TEST(RedisUrl, ParsesAndRefusesWithTheReason) {
  const RedisAddress a = ParseRedisUrl("redis://10.0.0.5:7000/3");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.db, 3);
  EXPECT_EQ(ParseRedisUrl("redis://h").port, 6379);
  EXPECT_EQ(ParseRedisUrl("redis://[::1]:6380").host, "::1");
  for (const char* bad : {"http://h:1", "redis://:1", "redis://h:0", "redis://h:99999", "redis://h:1/x", "redis://[::1"})
    EXPECT_THROW(ParseRedisUrl(bad), rg::Error) << bad;
}

}  // namespace
}  // namespace rg::test
