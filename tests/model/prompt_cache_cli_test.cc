// `rgemma generate --prompt-cache FILE` (llama.cpp's flag): the state after
// a prompt is saved; a later prompt that extends it continues from the file
// and answers exactly what a cold run answers; anything else in the file (an
// unrelated prompt, another model, garbage) is not used.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "subprocess.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
const std::string kBin = RG_BINARY;
const std::string kSmall = std::string(RG_TEST_DATA) + "/fixtures/small";
const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";

class PromptCacheCli : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = (fs::temp_directory_path() / ("rg_prompt_cache_" + std::to_string(getpid()) + ".state")).string();
    fs::remove(file_);
  }
  void TearDown() override { fs::remove(file_); }
  // stdout (the ids) and stderr, separately.
  std::pair<std::string, std::string> Gen(const std::string& model, const std::string& ids, bool cache) {
    const std::string err = file_ + ".err";
    auto r = RunCommand("(" + kBin + " generate -m " + model + " --prompt-ids " + ids +
                        " -n 6 --temperature 0 --ignore-eos --print-ids" + (cache ? " --prompt-cache " + file_ : "") +
                        " 2>" + err + ")");
    EXPECT_EQ(r.status, 0) << r.output;
    std::ifstream in(err);
    std::string e((std::istreambuf_iterator<char>(in)), {});
    fs::remove(err);
    return {r.output, e};
  }
  std::string file_;
};

TEST_F(PromptCacheCli, ReusesTheStateOfAPrefixExactly) {
  const std::string p = "2,17,33,4,99,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19";
  const std::string longer = p + ",40,41,42,43";
  const auto [cold, e0] = Gen(kSmall, longer, false);
  const auto [first, e1] = Gen(kSmall, p, true);  // writes the file
  EXPECT_TRUE(fs::exists(file_));
  EXPECT_THAT(e1, Not(HasSubstr("from the prompt cache")));
  const auto [again, e2] = Gen(kSmall, p, true);  // the same prompt: all of it from the file
  EXPECT_EQ(again, first);
  EXPECT_THAT(e2, HasSubstr("prompt 20 tok (20 from the prompt cache)"));
  const auto [ext, e3] = Gen(kSmall, longer, true);  // extends it
  EXPECT_EQ(ext, cold);
  EXPECT_THAT(e3, HasSubstr("prompt 24 tok (20 from the prompt cache)"));
}

TEST_F(PromptCacheCli, AnythingElseInTheFileIsNotUsed) {
  const std::string p = "2,17,33,4,99";
  const auto [cold, e0] = Gen(kSmall, p, false);
  Gen(kSmall, "2,50,51,52", true);  // another prompt
  auto [a, e1] = Gen(kSmall, p, true);
  EXPECT_EQ(a, cold);
  EXPECT_THAT(e1, HasSubstr("another prompt, not reused"));
  Gen(kTiny, "2,17,33", true);  // another model's state
  auto [b, e2] = Gen(kSmall, p, true);
  EXPECT_EQ(b, cold);
  EXPECT_THAT(e2, HasSubstr("saved from a different model"));
  std::ofstream(file_, std::ios::trunc) << "garbage";
  auto [c, e3] = Gen(kSmall, p, true);
  EXPECT_EQ(c, cold);
  EXPECT_THAT(e3, HasSubstr("not an rgemma state file"));
  // ... and each run left the file right for its own prompt.
  auto [d, e4] = Gen(kSmall, p, true);
  EXPECT_EQ(d, cold);
  EXPECT_THAT(e4, HasSubstr("(5 from the prompt cache)"));
}

}  // namespace
}  // namespace rg::test
