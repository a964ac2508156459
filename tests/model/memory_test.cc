// State memory is constant in sequence length: a model with the real
// 2048-token window generates 10,000 tokens with the same peak RSS as 1,000.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <string>
#include <unistd.h>

#include "subprocess.h"

namespace rg::test {
namespace {

size_t PeakRss(const std::string& output) {
  std::smatch m;
  const std::regex re("peak RSS [0-9.]+ MiB \\(([0-9]+) bytes\\)");
  if (!std::regex_search(output, m, re)) return 0;
  return std::stoull(m[1]);
}

TEST(Memory, PeakRssIsFlatFrom1kTo10kTokens) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("rg_memory_test_model_" + std::to_string(getpid()))).string();
  std::filesystem::remove_all(dir);
  const std::string bin = RG_BINARY;
  auto [st, out] = RunCommand(bin + " init --preset 2b --hidden-size 128 --num-heads 2 --vocab-size 1000 --num-layers 3 "
                             "--window 2048 --dtype f32 --seed 1 --out " + dir);
  ASSERT_EQ(st, 0) << out;
  auto gen = [&](int n) {
    auto [s, o] = RunCommand(bin + " generate -m " + dir + " --prompt-ids 2,5,9 --max-tokens " + std::to_string(n) +
                      " --temperature 0 --ignore-eos --print-ids --threads 1");
    EXPECT_EQ(s, 0) << o.substr(0, 500);
    return o;
  };
  const std::string o1 = gen(1000), o10 = gen(10000);
  const size_t rss1 = PeakRss(o1), rss10 = PeakRss(o10);
  ASSERT_GT(rss1, 0u) << o1.substr(o1.size() > 300 ? o1.size() - 300 : 0);
  ASSERT_GT(rss10, 0u);
  // The generated ids are really there (10,000 of them, past the window 5 times).
  EXPECT_GT(o10.size(), 10000u);
  RecordProperty("rss_1k_bytes", std::to_string(rss1));
  RecordProperty("rss_10k_bytes", std::to_string(rss10));
  // 1 MiB + 2%: the peak of the same run varies by up to ~450 KB (of 18 MB)
  // from run to run (a CI run saw +448 KB, 2.5%); under ASan (153 MB, its
  // quarantine keeps freed blocks) by 1.5 MB. An attention cache that kept
  // growing past the window holds f32 keys and values of one KV head
  // (2 x 64 x 4 B = 512 B per token in the one attention layer): +4.6 MB.
  const double growth = double(rss10) - double(rss1);
  const double allowed = 1024.0 * 1024.0 + 0.02 * double(rss1);
  EXPECT_LT(std::abs(growth), allowed) << "peak RSS at 1k tokens " << rss1 << " bytes, at 10k " << rss10;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rg::test
