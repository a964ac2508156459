// Every command that writes an output path creates its missing parent
// directories (as mkdir -p), and says which path and why when it cannot.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "subprocess.h"
#include "test_paths.h"
#include "temp_dir.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class OutputPaths : public TempDirTest {
 protected:
  std::string Deep(const std::string& leaf) const { return (root_ / "a" / "b" / leaf).string(); }
};

TEST_F(OutputPaths, InitCreatesMissingParents) {
  const std::string out = Deep("model");
  auto r = RunCommand(kBin + " init --preset 2b --hidden-size 32 --num-heads 2 --num-layers 3 --window 8 "
                      "--vocab-size 300 --seed 1 --out " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_TRUE(fs::exists(out + "/model.safetensors.index.json"));
  // ...and the result loads.
  r = RunCommand(kBin + " generate -m " + out + " --prompt-ids 2,3 -n 2 --print-ids --temperature 0 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(OutputPaths, QuantizeCreatesMissingParents) {
  const std::string out = Deep("q8");
  auto r = RunCommand(kBin + " quantize -m " + kTiny + " --to q8 --out " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(out + "/config.json"));
}

TEST_F(OutputPaths, ForwardCreatesMissingParents) {
  const std::string out = Deep("logits.safetensors");
  auto r = RunCommand(kBin + " forward -m " + kTiny + " --tokens " + kTiny + "/expected.safetensors --out " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(out));
}

TEST_F(OutputPaths, UncreatableParentIsNamed) {
  // A regular file where a directory is needed.
  const std::string file = (root_ / "plainfile").string();
  RunCommand("touch " + file);
  auto r = RunCommand(kBin + " init --preset 2b --hidden-size 32 --num-heads 2 --num-layers 3 --window 8 "
                      "--vocab-size 300 --out " + file + "/sub/model 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("cannot create directory " + file + ": it exists and is not a directory"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace
}  // namespace rg::test
