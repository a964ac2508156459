// The state cache's budget bounds memory for real: 200 distinct
// conversations through one engine leave the process's RSS within the
// budget of where it was after the first ones (snapshots are mmapped, so
// evicted ones give their memory back to the system).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "generate/engine.h"
#include "subprocess.h"

namespace rg::test {
namespace {

size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return size_t(std::stoull(line.substr(6))) * 1024;
  return 0;
}

TEST(CacheMemory, TwoHundredConversationsStayWithinTheBudget) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("rg_cache_memory_" + std::to_string(getpid()))).string();
  std::filesystem::remove_all(dir);
  // Snapshots of ~0.35 MB (2 attention layers x 300 live KV slots of 2 x 64 floats).
  auto [st, out] = RunCommand(std::string(RG_BINARY) + " init --preset 2b --hidden-size 128 --num-heads 2 "
                              "--num-layers 6 --window 512 --vocab-size 4096 --dtype f32 --seed 1 --out " + dir);
  ASSERT_EQ(st, 0) << out;
  LoadOptions lo;
  lo.copy_to_huge_pages = false;
  auto weights = Weights::Load(dir, lo);
  ThreadPool pool(2);
  EngineOptions o;
  o.parallel = 4;
  o.cache_bytes = size_t(12) << 20;
  o.checkpoint_every = 128;
  Engine engine(weights, pool, o);
  std::mt19937 rng(1);
  auto conversation = [&](int c) {
    std::vector<int32_t> p = {2};
    for (int i = 0; i < 300; ++i) p.push_back(3 + int32_t(rng() % 4000));
    for (int turn = 0; turn < 2; ++turn) {
      Request r;
      r.prompt = p;
      r.sampling.temperature = 0;
      r.max_tokens = 2;
      r.ignore_eos = true;
      std::vector<int32_t> got;
      r.on_token = [&](int32_t id, const TokenLogprob*) {
        got.push_back(id);
        return true;
      };
      const Result res = engine.Run(std::move(r));
      ASSERT_EQ(res.reason, FinishReason::kLength) << "conversation " << c;
      if (turn == 1) ASSERT_GT(res.cached_tokens, 300) << "conversation " << c << " resumed its first turn";
      p.insert(p.end(), got.begin(), got.end());
      p.push_back(7);
    }
  };
  for (int c = 0; c < 10; ++c) conversation(c);  // the cache and the allocators warm up
  const size_t before = RssBytes();
  for (int c = 10; c < 210; ++c) conversation(c);
  const size_t after = RssBytes();
  const StateCacheStats s = engine.cache()->Stats();
  RecordProperty("rss_before", std::to_string(before));
  RecordProperty("rss_after", std::to_string(after));
  EXPECT_GT(s.evictions, 100u) << "the budget was reached";
  EXPECT_LE(s.bytes, s.budget_bytes);
  // Everything the cache holds is within its budget; allow 8 MB for the rest
  // (allocator slack, token vectors).
  EXPECT_LE(after, before + o.cache_bytes + (size_t(8) << 20))
      << "RSS " << (before >> 20) << " MiB -> " << (after >> 20) << " MiB with a " << (o.cache_bytes >> 20)
      << " MiB budget";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rg::test
