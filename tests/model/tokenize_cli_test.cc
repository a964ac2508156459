// The tokenize contract: every golden line through `rgemma tokenize`, as an
// outside check runs it, and one-line errors for bad lines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "subprocess.h"

namespace rg::test {
namespace {

const std::string kBin = RG_BINARY;
const std::string kTok = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";

TEST(TokenizeCli, GoldenEncodingsThroughTheContract) {
  std::ifstream golden(std::string(RG_TEST_DATA) + "/tokenizer/golden.jsonl");
  std::string input, line;
  std::vector<nlohmann::json> want;
  while (std::getline(golden, line)) {
    const auto j = nlohmann::json::parse(line);
    input += nlohmann::json{{"text", j["text"]}}.dump() + "\n";
    want.push_back(j["ids"]);
  }
  ASSERT_EQ(want.size(), 500u);
  for (bool bos : {false, true}) {
    auto r = RunCommandWithInput("(" + kBin + " tokenize --tokenizer " + kTok + (bos ? " --bos" : "") + " 2>/dev/null)", input);
    ASSERT_EQ(r.status, 0);
    std::istringstream out(r.output);
    size_t i = 0;
    while (std::getline(out, line)) {
      ASSERT_LT(i, want.size());
      nlohmann::json expect = want[i];
      if (bos) expect.insert(expect.begin(), 2);
      EXPECT_EQ(nlohmann::json::parse(line)["ids"], expect) << "golden line " << i + 1;
      ++i;
    }
    EXPECT_EQ(i, want.size());
  }
}

TEST(TokenizeCli, BadLinesAreOneLineErrors) {
  auto err = [](const std::string& input) {
    auto r = RunCommandWithInput("(" + kBin + " tokenize --tokenizer " + kTok + " 2>&1 >/dev/null)", input);
    EXPECT_NE(r.status, 0) << input;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    return r.output;
  };
  EXPECT_THAT(err("{\"text\": \"ok\"}\n{\"text\": \"oops\"\n"), ::testing::HasSubstr("stdin line 2: not valid JSON"));
  EXPECT_THAT(err("{\"txt\": \"x\"}\n"), ::testing::HasSubstr("stdin line 1: expected an object"));
  EXPECT_THAT(err("{\"text\": \"\xff\xfe\"}\n"), ::testing::HasSubstr("stdin line 1"));
  auto r = RunCommand("(" + kBin + " tokenize --tokenizer /nonexistent.model 2>&1 >/dev/null)");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, ::testing::HasSubstr("/nonexistent.model"));
}

}  // namespace
}  // namespace rg::test
