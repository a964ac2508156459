// A model whose vocabulary is larger than its tokenizer's (a padded
// embedding): the ids the tokenizer has no piece for are never sampled and
// have no text (cli/model_files.h, SampleableVocab), decided once at load.
// The server's side is in tests/server/limits.test.mjs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "subprocess.h"
#include "test_paths.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
constexpr int kTokenizerPieces = 256000;

class VocabGap : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() / ("rg_vocab_gap_" + std::to_string(getpid()))).string());
    fs::remove_all(*dir_);
    // 44000 ids beyond the tokenizer's 256000: random logits pick them often.
    const CommandResult r = RunCommand(kBin + " init --preset 2b --hidden-size 32 --num-heads 2 --num-layers 3 "
                                       "--window 8 --vocab-size 300000 --dtype bf16 --seed 5 --tokenizer " +
                                       kTokenizer + " --out " + *dir_);
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string* dir_;
};
std::string* VocabGap::dir_ = nullptr;

TEST_F(VocabGap, IdsWithoutTextAreNeverSampled) {
  // 150 tokens: without the mask about one in seven would be an id without text.
  const std::string gen = kBin + " generate -m " + *dir_ + " -n 150 --ignore-eos --temperature 1.5 --seed 7 ";
  // Text: streams to the end instead of failing on an id without a piece.
  CommandResult r = RunCommand(gen + "-p 'Once upon a time' -q 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  // Ids: every one has a piece; a prompt may still hold the others.
  r = RunCommand(gen + "--prompt-ids 2,299999,256000,17 --print-ids -q");
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream in(r.output);
  int n = 0;
  for (int id; in >> id; ++n) EXPECT_LT(id, kTokenizerPieces);
  EXPECT_EQ(n, 150);
  // Decided once, and said once.
  r = RunCommand("(" + kBin + " generate -m " + *dir_ + " --prompt-ids 2,3 -n 1 --print-ids 2>&1 >/dev/null)");
  EXPECT_THAT(r.output, HasSubstr("ids 256000..299999 are never sampled"));
}

}  // namespace
}  // namespace rg::test
