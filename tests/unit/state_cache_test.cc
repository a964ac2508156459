// The state cache (generate/state_cache.h) and its disk tier
// (generate/disk_store.h) on their own: longest-prefix lookup by exact
// tokens, the logits rule at the limit, LRU under a byte budget, snapshots
// that stay valid while evicted, and store lookups that skip anything that
// is not a valid snapshot of this model with one log line.
#include "generate/state_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "core/error.h"
#include "generate/disk_store.h"

namespace rg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

Config SmallConfig() {
  Config c;
  c.vocab_size = 64;
  c.width = 8;
  c.mlp_width = 24;
  c.num_heads = 2;
  c.head_dim = 4;
  c.lru_width = 8;
  c.conv_width = 4;
  c.attention_window = 4;
  c.layers = {LayerKind::kRecurrent, LayerKind::kRecurrent, LayerKind::kAttention};
  return c;
}

constexpr ModelFingerprint kFp{0x1111222233334444ull, 0x5555666677778888ull};

// A state whose contents identify the tokens (so a restore can be checked).
State StateFor(const Config& c, const std::vector<int32_t>& tokens) {
  State s(c);
  s.pos = int64_t(tokens.size());
  float tag = 0;
  for (int32_t t : tokens) tag = tag * 0.5f + float(t);
  for (auto& l : s.layers) {
    if (auto* r = std::get_if<RecurrentState>(&l)) {
      for (float& x : r->h) x = tag;
      for (float& x : r->conv) x = -tag;
    } else if (auto* a = std::get_if<AttentionState>(&l)) {
      for (float& x : a->k) x = tag + 1;
      for (float& x : a->v) x = tag + 2;
    }
  }
  return s;
}

SnapshotPtr Snap(const Config& c, const std::vector<int32_t>& tokens, bool logits = false) {
  std::vector<float> l(size_t(c.vocab_size), 0.5f);
  return Snapshot::Capture(StateFor(c, tokens), c, tokens, logits ? l.data() : nullptr);
}

std::vector<int32_t> Seq(std::initializer_list<int32_t> v) { return v; }

TEST(StateCache, LongestExactPrefixWins) {
  const Config c = SmallConfig();
  StateCache cache(c, kFp, 1 << 20);
  cache.Insert(Snap(c, {2, 5}));
  cache.Insert(Snap(c, {2, 5, 7, 9}));
  cache.Insert(Snap(c, {2, 6, 7, 9, 11}));  // same length range, other tokens
  const auto prompt = Seq({2, 5, 7, 9, 11, 13});
  SnapshotPtr hit = cache.Lookup(prompt, int64_t(prompt.size()));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tokens(), Seq({2, 5, 7, 9}));
  // The restored state is the one captured for those tokens.
  State s(c);
  hit->Restore(c, &s);
  EXPECT_EQ(s.pos, 4);
  const State want = StateFor(c, {2, 5, 7, 9});
  EXPECT_EQ(std::get<RecurrentState>(s.layers[0]).h, std::get<RecurrentState>(want.layers[0]).h);
  // Not a prefix at all: a miss.
  EXPECT_FALSE(cache.Lookup(Seq({3, 5, 7}), 3));
  // The limit bounds the length.
  EXPECT_EQ(cache.Lookup(prompt, 3)->tokens(), Seq({2, 5}));
  const StateCacheStats st = cache.Stats();
  EXPECT_EQ(st.lookups, 3u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.hit_tokens, 6u);
}

TEST(StateCache, ASnapshotOfExactlyTheLimitNeedsLogits) {
  const Config c = SmallConfig();
  StateCache cache(c, kFp, 1 << 20);
  cache.Insert(Snap(c, {2, 5}));
  cache.Insert(Snap(c, {2, 5, 7}));  // a checkpoint: no logits
  const auto prompt = Seq({2, 5, 7});
  EXPECT_EQ(cache.Lookup(prompt, 3)->tokens(), Seq({2, 5}));  // the token after must be predicted
  cache.Insert(Snap(c, {2, 5, 7}, /*logits=*/true));          // replaces the one without
  SnapshotPtr hit = cache.Lookup(prompt, 3);
  ASSERT_TRUE(hit && hit->logits());
  EXPECT_EQ(hit->pos(), 3);
  EXPECT_EQ(hit->logits()[0], 0.5f);
  cache.Insert(Snap(c, {2, 5, 7}));  // and is not replaced by one without
  EXPECT_TRUE(cache.Lookup(prompt, 3)->logits());
  EXPECT_EQ(cache.Stats().entries, 2u);
}

TEST(StateCache, LeastRecentlyUsedGoesFirstAndTheBudgetHolds) {
  const Config c = SmallConfig();
  const size_t one = Snap(c, {2, 1, 1, 1, 1})->bytes();
  StateCache cache(c, kFp, 3 * one + one / 2);
  for (int32_t i = 0; i < 3; ++i) cache.Insert(Snap(c, {2, i, 1, 1, 1}));
  ASSERT_TRUE(cache.Lookup(Seq({2, 0, 1, 1, 1, 9}), 6));  // 0 is now the most recent
  cache.Insert(Snap(c, {2, 3, 1, 1, 1}));                  // evicts 1, the least recent
  EXPECT_TRUE(cache.Lookup(Seq({2, 0, 1, 1, 1, 9}), 6));
  EXPECT_FALSE(cache.Lookup(Seq({2, 1, 1, 1, 1, 9}), 6));
  EXPECT_TRUE(cache.Lookup(Seq({2, 2, 1, 1, 1, 9}), 6));
  EXPECT_TRUE(cache.Lookup(Seq({2, 3, 1, 1, 1, 9}), 6));
  const StateCacheStats st = cache.Stats();
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_LE(st.bytes, st.budget_bytes);
  EXPECT_EQ(st.entries, 3u);
}

TEST(StateCache, EvictedSnapshotsStayValidForTheirHolders) {
  const Config c = SmallConfig();
  const size_t one = Snap(c, {2, 1})->bytes();
  StateCache cache(c, kFp, one + one / 2);
  cache.Insert(Snap(c, {2, 1}));
  SnapshotPtr held = cache.Lookup(Seq({2, 1, 4}), 3);
  ASSERT_TRUE(held);
  cache.Insert(Snap(c, {2, 2}));  // evicts {2, 1}
  EXPECT_FALSE(cache.Lookup(Seq({2, 1, 4}), 3));
  State s(c);
  held->Restore(c, &s);  // still whole
  EXPECT_EQ(s.pos, 2);
  EXPECT_EQ(std::get<RecurrentState>(s.layers[0]).h, std::get<RecurrentState>(StateFor(c, {2, 1}).layers[0]).h);
}

TEST(StateCache, TooBigForTheBudgetIsNotKept) {
  const Config c = SmallConfig();
  StateCache cache(c, kFp, 16);
  cache.Insert(Snap(c, {2, 1}));
  EXPECT_EQ(cache.Stats().entries, 0u);
}

TEST(StateCache, ConcurrentInsertsAndLookupsStayConsistent) {
  const Config c = SmallConfig();
  const size_t one = Snap(c, {2, 1, 1})->bytes();
  StateCache cache(c, kFp, 5 * one);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng{uint32_t(t)};
      for (int i = 0; i < 300; ++i) {
        const int32_t a = int32_t(rng() % 8), b = int32_t(rng() % 8);
        if (rng() % 2) cache.Insert(Snap(c, {2, a, b}, rng() % 2 == 0));
        SnapshotPtr s = cache.Lookup(Seq({2, a, b, 5}), 4);
        if (s) {
          ASSERT_EQ(s->tokens(), Seq({2, a, b}));
          State st(c);
          s->Restore(c, &st);
        }
      }
    });
  for (auto& t : ts) t.join();
  const StateCacheStats st = cache.Stats();
  EXPECT_LE(st.bytes, st.budget_bytes);
  EXPECT_LE(st.entries, 5u);
}

TEST(StateCache, StoreKeysDependOnModelAndEveryToken) {
  const auto t = Seq({2, 5, 7});
  EXPECT_EQ(StoreKey(kFp, t), StoreKey(kFp, t));
  EXPECT_NE(StoreKey(kFp, t), StoreKey(kFp, Seq({2, 5, 8})));
  EXPECT_NE(StoreKey(kFp, t), StoreKey(kFp, Seq({2, 5})));
  ModelFingerprint other = kFp;
  other.weights ^= 1;
  EXPECT_NE(StoreKey(kFp, t), StoreKey(other, t));
  EXPECT_EQ(StoreKey(kFp, t).size(), 4u + 32u);
}

class DiskTier : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("rg_disk_tier_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Inserts through a cache with a disk store and waits for the writes.
  void Write(const std::vector<SnapshotPtr>& snaps, const ModelFingerprint& fp = kFp) {
    StateCache cache(c_, fp, 1 << 20);
    auto store = std::make_unique<DiskStore>(dir_, 1 << 20, c_, fp);
    cache.AddStore(std::move(store));
    for (const SnapshotPtr& s : snaps) cache.Insert(s);
    for (int i = 0; i < 500 && Files() < snaps.size(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  size_t Files() const {
    size_t n = 0;
    if (fs::exists(dir_))
      for (auto& e : fs::directory_iterator(dir_)) n += e.path().extension() == ".rgstate";
    return n;
  }
  // A fresh cache (empty memory) over the directory; the store lookup's answer.
  SnapshotPtr Fetch(const std::vector<int32_t>& tokens, std::string* log = nullptr) {
    ::testing::internal::CaptureStderr();
    SnapshotPtr got;
    {
      StateCache cache(c_, kFp, 1 << 20);
      cache.AddStore(std::make_unique<DiskStore>(dir_, 1 << 20, c_, kFp));
      std::promise<SnapshotPtr> p;
      cache.FetchAsync(tokens, {}, 0, int64_t(tokens.size()), [&](SnapshotPtr s) { p.set_value(s); });
      got = p.get_future().get();
    }
    const std::string err = ::testing::internal::GetCapturedStderr();
    if (log) *log = err;
    return got;
  }
  std::string PathOf(const std::vector<int32_t>& tokens) const {
    return dir_ + "/rgs-" + StoreKey(kFp, tokens).substr(4) + ".rgstate";
  }

  Config c_ = SmallConfig();
  std::string dir_;
};

TEST_F(DiskTier, SnapshotsSurviveANewCache) {
  Write({Snap(c_, {2, 5, 7}), Snap(c_, {2, 5, 7, 9, 11}, true)});
  ASSERT_EQ(Files(), 2u);
  SnapshotPtr s = Fetch(Seq({2, 5, 7, 9, 11, 13}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->tokens(), Seq({2, 5, 7, 9, 11}));  // the disk index knows both lengths: the longest wins
  EXPECT_TRUE(s->logits());
}

TEST_F(DiskTier, TruncatedGarbageAndForeignFilesAreSkippedWithALogLine) {
  Write({Snap(c_, {2, 5, 7}), Snap(c_, {2, 5, 7, 9}), Snap(c_, {2, 5, 7, 9, 11})});
  ASSERT_EQ(Files(), 3u);
  // Truncated.
  fs::resize_file(PathOf({2, 5, 7, 9, 11}), fs::file_size(PathOf({2, 5, 7, 9, 11})) - 10);
  // Garbage.
  std::ofstream(PathOf({2, 5, 7, 9}), std::ios::trunc) << "this is not a state file at all, just text";
  // Another model's snapshot under this model's key.
  ModelFingerprint other = kFp;
  other.weights ^= 1;
  const std::string foreign = Snap(c_, {2, 5, 7})->Serialize(c_, other);
  std::ofstream(PathOf({2, 5, 7}), std::ios::binary | std::ios::trunc) << foreign;
  std::string log;
  EXPECT_FALSE(Fetch(Seq({2, 5, 7, 9, 11, 13}), &log));
  EXPECT_THAT(log, HasSubstr(PathOf({2, 5, 7, 9, 11})));
  EXPECT_THAT(log, HasSubstr(PathOf({2, 5, 7, 9})));
  EXPECT_THAT(log, HasSubstr(PathOf({2, 5, 7})));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3) << log;
}

TEST_F(DiskTier, ACorruptBodyBehindAValidHeaderIsSkipped) {
  Write({Snap(c_, {2, 5, 7, 9}, true)});
  {
    std::fstream f(PathOf({2, 5, 7, 9}), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  std::string log;
  EXPECT_FALSE(Fetch(Seq({2, 5, 7, 9, 11}), &log));
  EXPECT_THAT(log, HasSubstr("checksum mismatch"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

TEST_F(DiskTier, TheDirectoryStaysWithinItsBudget) {
  const size_t one = Snap(c_, {2, 1, 1})->Serialize(c_, kFp).size();
  {
    StateCache cache(c_, kFp, 1 << 20);
    cache.AddStore(std::make_unique<DiskStore>(dir_, 2 * one + one / 2, c_, kFp));
    for (int32_t i = 0; i < 6; ++i) cache.Insert(Snap(c_, {2, i, 1}));
  }  // the store thread drops what was still queued; the budget held for the rest
  size_t bytes = 0;
  for (auto& e : fs::directory_iterator(dir_)) bytes += e.file_size();
  EXPECT_LE(bytes, 2 * one + one / 2);
}

}  // namespace
}  // namespace rg
