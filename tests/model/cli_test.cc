// The CLI contract, run as an outside check runs it: `rgemma forward` and
// `rgemma generate --print-ids` on every fixture, and one-line errors with a
// non-zero exit for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fixture_util.h"
#include "io/safetensors.h"
#include "subprocess.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
const std::string kBin = RG_BINARY;

std::string Tmp(const std::string& name) {
  return (fs::temp_directory_path() / ("rg_cli_" + std::to_string(getpid()) + "_" + name)).string();
}

class CliFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CliFixture, ForwardBothModesMatchReference) {
  Fixture f(GetParam());
  for (const char* mode : {"prefill", "decode"}) {
    const std::string out = Tmp(std::string("fwd_") + mode + ".safetensors");
    auto r = RunCommand(kBin + " forward --model " + f.dir + " --tokens " + f.dir + "/expected.safetensors --out " +
                        out + " --mode " + mode);
    ASSERT_EQ(r.status, 0) << r.output;
    auto got = SafetensorsFile::Open(out);
    for (const FixtureCase& c : f.cases) {
      const TensorView* g = got->Find("logits." + c.index);
      const TensorView* ref = std::string(mode) == "prefill" ? c.logits : c.decode_logits;
      ASSERT_NE(g, nullptr) << "logits." << c.index;
      ASSERT_EQ(g->shape, ref->shape);
      EXPECT_LE(MaxAbsDiff(static_cast<const float*>(g->data), static_cast<const float*>(ref->data),
                           size_t(ref->numel())), 1e-3) << mode << " case " << c.index;
    }
    EXPECT_EQ(got->tensors().size(), f.cases.size()) << "only logits.<i> are written";
    fs::remove(out);
  }
}

TEST_P(CliFixture, GreedyGenerateMatchesReference) {
  Fixture f(GetParam());
  for (const FixtureCase& c : f.cases) {
    if (c.gen_tokens.empty()) continue;
    std::string ids;
    for (int32_t t : c.gen_prompt) ids += (ids.empty() ? "" : ",") + std::to_string(t);
    auto r = RunCommand("(" + kBin + " generate --model " + f.dir + " --prompt-ids " + ids + " --max-tokens " +
                        std::to_string(c.gen_tokens.size()) + " --temperature 0 --ignore-eos --print-ids 2>/dev/null)");
    ASSERT_EQ(r.status, 0);
    std::string want;
    for (int32_t t : c.gen_tokens) want += (want.empty() ? "" : " ") + std::to_string(t);
    EXPECT_EQ(r.output, want + "\n") << "stdout holds exactly the ids, case " << c.index;
  }
}

INSTANTIATE_TEST_SUITE_P(All, CliFixture, ::testing::ValuesIn(FixtureDirs()), [](const auto& info) {
  std::string n = fs::path(info.param).filename().string();
  for (char& ch : n) if (!isalnum(uint8_t(ch))) ch = '_';
  return n;
});

// One line on stderr, non-zero exit, and the line names what is wrong.
void ExpectError(const std::string& args, const std::string& phrase) {
  auto r = RunCommand("(" + kBin + " " + args + " 2>&1 >/dev/null)");
  EXPECT_NE(r.status, 0) << args;
  EXPECT_THAT(r.output, HasSubstr(phrase)) << args;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
}

const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";

TEST(Cli, BadInputsGiveOneLineErrors) {
  ExpectError("generate -m /nonexistent --prompt-ids 2,3", "/nonexistent/config.json: cannot open");
  ExpectError("generate -m " + kTiny + " --prompt-ids 2,x --print-ids", "--prompt-ids: 'x' is not a token id");
  ExpectError("generate -m " + kTiny + " --prompt-ids 2,600 --print-ids", "token id 600");
  ExpectError("generate -m " + kTiny + " --prompt-ids 2,3 --print-ids --temperature -1", "temperature");
  ExpectError("generate -m " + kTiny + " --prompt-ids 2,3 --print-ids --top-p 2", "top_p");
  ExpectError("generate -m " + kTiny + " --prompt-ids 2,3 --print-ids --max-tokens -5", "max-tokens");
  ExpectError("generate -m " + kTiny + " -p hello", "no tokenizer.model");
  ExpectError("forward -m " + kTiny + " --tokens /nonexistent.safetensors --out " + Tmp("x"), "/nonexistent.safetensors");
  ExpectError("frobnicate", "frobnicate");
  // A tokens file with a wrongly typed tokens tensor.
  const std::string bad = Tmp("bad_tokens.safetensors");
  const float f[3] = {2, 3, 4};
  WriteSafetensors(bad, {{"tokens.0", DType::F32, {3}, f, sizeof f}});
  ExpectError("forward -m " + kTiny + " --tokens " + bad + " --out " + Tmp("y"), "'tokens.0' must be I32 [T]");
  fs::remove(bad);
}

TEST(Cli, PromptFileLimitsAreEnforced) {
  const std::string big = Tmp("big_prompt.txt");
  std::ofstream(big) << std::string(2000, 'a');
  ExpectError("generate -m " + kTiny + " --tokenizer " + std::string(RG_SOURCE_DIR) +
                  "/models/tokenizer/tokenizer.model -f " + big + " --max-prompt-bytes 1000",
              "more than the limit of 1000");
  std::ofstream(big) << "\xff\xfe bad utf8";
  ExpectError("generate -m " + kTiny + " --tokenizer " + std::string(RG_SOURCE_DIR) +
                  "/models/tokenizer/tokenizer.model -f " + big,
              "invalid UTF-8");
  fs::remove(big);
}

}  // namespace
}  // namespace rg::test
