// What llama.cpp users type and expect from the CLI: a random default seed
// (printed) unless --seed, load progress and the load time, Ctrl-C in
// generate still printing the stats, -c / -np / -v / --mmap / -e / -f -,
// llama.cpp flags that make no sense here refused with a reason, and a
// --version that names the commit, compiler and SIMD levels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "subprocess.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace rg::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// The tiny fixture (token ids only), the Gemma tokenizer, the binary.
const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";
const std::string kTokenizer = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";
const std::string kBin = RG_BINARY;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CliHabitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("rg_cli_habits_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    const CommandResult r = RunCommand(kBin + " init --preset 2b --hidden-size 64 --num-heads 2 --num-layers 3 "
                                              "--window 16 --dtype bf16 --seed 3 --threads 2 --tokenizer " +
                                       Quote(kTokenizer) + " --out " + Quote(Text()));
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Text() { return (*dir_ / "text").string(); }
  static std::string Tmp(const std::string& name) { return (*dir_ / name).string(); }

  struct Out {
    int status;
    std::string out, err;
  };
  // Runs `rgemma <args>` with stdout and stderr apart (`prefix` goes before it: env, a pipe).
  static Out Rgemma(const std::string& args, const std::string& prefix = "") {
    static int n = 0;
    const std::string out = Tmp("out" + std::to_string(n++));
    const CommandResult r = RunCommand("{ " + prefix + kBin + " " + args + " > " + Quote(out) + "; }");
    Out o{r.status, ReadFile(out), r.output};
    fs::remove(out);
    return o;
  }

  static fs::path* dir_;
};
fs::path* CliHabitsTest::dir_ = nullptr;

TEST_F(CliHabitsTest, DefaultSeedIsRandomAndPrintedSoARunCanBeRepeated) {
  const std::string args = "generate -m " + Quote(Text()) + " --prompt-ids 2,100 -n 12 --temperature 1 --print-ids";
  const Out a = Rgemma(args), b = Rgemma(args);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out, b.out) << "two runs at temperature 1 should differ";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(a.err, m, std::regex(R"(seed: (\d+) \(--seed \d+ repeats this run\))"))) << a.err;
  const Out again = Rgemma(args + " --seed " + m[1].str());
  EXPECT_EQ(again.out, a.out);
  EXPECT_THAT(again.err, Not(HasSubstr("seed:")));  // given: nothing to report
  // Greedy output does not depend on a seed: nothing printed, stdout as before.
  const Out g1 = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -n 5 --temperature 0 --print-ids");
  const Out g2 = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -n 5 --temperature 0 --print-ids");
  EXPECT_EQ(g1.out, g2.out);
  EXPECT_THAT(g1.err, Not(HasSubstr("seed:")));
  EXPECT_TRUE(std::regex_match(g1.out, std::regex(R"(\d+( \d+){4}\n)"))) << g1.out;
}

TEST_F(CliHabitsTest, SlowLoadsShowProgressAndTheStatsLineHasTheLoadTime) {
  const std::string args = "generate -m " + Quote(Text()) + " --prompt-ids 2,3 -n 2 --print-ids";
  // RG_LOAD_PROGRESS_AFTER lowers the one-second threshold so the test sees it.
  const Out slow = Rgemma(args, "RG_LOAD_PROGRESS_AFTER=0 ");
  ASSERT_EQ(slow.status, 0) << slow.err;
  EXPECT_THAT(slow.err, HasSubstr("loading " + Text() + ": 100%")) << slow.err;
  const Out fast = Rgemma(args);
  EXPECT_THAT(fast.err, Not(HasSubstr("loading "))) << fast.err;  // under a second: silent
  EXPECT_TRUE(std::regex_search(fast.err, std::regex(R"(\[stats\] prompt 2 tok.*\| stop: length \| load \d+\.\d\d s\n)"))) << fast.err;
  EXPECT_THAT(Rgemma(args + " -q", "RG_LOAD_PROGRESS_AFTER=0 ").err, Not(HasSubstr("loading ")));
}

TEST_F(CliHabitsTest, CtrlCInGenerateStillPrintsTheStats) {
  const std::string out = Tmp("sigint.out"), err = Tmp("sigint.err");
  const std::string script = kBin + " generate -m " + kTiny + " --prompt-ids 2,3 -n 100000000 --ignore-eos --print-ids > " +
                             Quote(out) + " 2> " + Quote(err) + " & p=$!; (sleep 30; kill -KILL $p) >/dev/null 2>&1 & "
                             "i=0; while [ ! -s " + Quote(out) + " ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
                             "sleep 0.2; kill -INT $p; wait $p; echo rc=$?";
  const CommandResult r = RunCommand(script);
  EXPECT_THAT(r.output, HasSubstr("rc=130"));
  const std::string e = ReadFile(err);
  EXPECT_TRUE(std::regex_search(e, std::regex(R"(\[stats\] prompt .*generated \d+ tok.*stop: interrupted \| load )"))) << e;
  EXPECT_FALSE(ReadFile(out).empty());
}

TEST_F(CliHabitsTest, LlamaCppFlags) {
  // Flags without a meaning here: one line saying why, exit 2 (not a CLI11 conversion error).
  Out o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -ngl 99");
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "rgemma: unknown option -ngl (rgemma runs on the CPU) (see rgemma generate --help)\n");
  o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 --n-gpu-layers=99");
  EXPECT_THAT(o.err, HasSubstr("unknown option --n-gpu-layers (rgemma runs on the CPU)"));
  o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -sys hi");
  EXPECT_THAT(o.err, HasSubstr("unknown option -sys (only rgemma chat takes a system prompt: --system)"));
  // -c: accepted, with a note; RecurrentGemma has no context limit.
  o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -n 3 --temperature 0 --print-ids -c 4096");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_THAT(o.err, HasSubstr("-c/--ctx-size has no effect: RecurrentGemma has no context limit"));
  // -v says what runs where; --mmap / --no-mmap choose how the weights are held.
  o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -n 1 --print-ids -v --mmap");
  EXPECT_THAT(o.err, HasSubstr("loaded " + kTiny + ": 3 layers"));
  EXPECT_TRUE(std::regex_search(o.err, std::regex(R"(running on \d+ threads, SIMD (scalar|avx2|avx512).*in the file mapping)")))
      << o.err;
  o = Rgemma("generate -m " + kTiny + " --prompt-ids 2,3 -n 1 --print-ids -v --no-mmap", "RG_MMAP=1 ");
  EXPECT_THAT(o.err, HasSubstr("copied into huge pages"));
  // -np is --parallel for serve; -sys is --system for chat.
  const std::string port = Tmp("np.port");
  const CommandResult s = RunCommand("{ " + kBin + " serve -m " + kTiny + " -np 3 --port 0 --port-file " + Quote(port) +
                                     " & p=$!; i=0; while [ ! -s " + Quote(port) + " ] && [ $i -lt 400 ]; do sleep 0.05; "
                                     "i=$((i+1)); done; kill -TERM $p; wait $p; echo rc=$?; }");
  EXPECT_THAT(s.output, HasSubstr("3 slots"));
  EXPECT_THAT(s.output, HasSubstr("rc=0"));
  const Out chat = Rgemma("chat -m " + Quote(Text()) + " --threads 2 --temperature 0 -n 2 --print-ids --echo-input -q "
                          "-sys 'Be brief.'", "printf 'Hi\\n' | ");
  ASSERT_EQ(chat.status, 0) << chat.err;
  std::unique_ptr<Tokenizer> tok = Tokenizer::Load(kTokenizer);
  std::string want;
  for (int id : UserTurnIds(*tok, "Be brief.\n\nHi", true)) want += (want.empty() ? "" : " ") + std::to_string(id);
  EXPECT_THAT(chat.err, HasSubstr("[input ids] " + want + "\n")) << chat.err;
}

TEST_F(CliHabitsTest, EscapesAndPromptFromStdin) {
  const std::string gen = "generate -m " + Quote(Text()) + " -n 6 --temperature 0 --ignore-eos --print-ids ";
  const Out real = Rgemma(gen + "-p \"$(printf 'Line one\\n\\tLine \"two\"')\"");
  const Out escaped = Rgemma(gen + "-e -p 'Line one\\n\\tLine \\\"two\\\"'");
  const Out literal = Rgemma(gen + "-p 'Line one\\n\\tLine \\\"two\\\"'");
  ASSERT_EQ(real.status, 0) << real.err;
  EXPECT_EQ(escaped.out, real.out);
  auto prompt_tokens = [](const std::string& err) {
    std::smatch m;
    return std::regex_search(err, m, std::regex(R"(prompt (\d+) tok)")) ? std::stoi(m[1]) : -1;
  };
  EXPECT_EQ(prompt_tokens(escaped.err), prompt_tokens(real.err));
  EXPECT_NE(prompt_tokens(literal.err), prompt_tokens(real.err)) << "without -e the backslashes stay";
  // -f - reads the prompt from stdin.
  const Out piped = Rgemma(gen + "-f -", "printf 'Line one\\n\\tLine \"two\"' | ");
  EXPECT_EQ(piped.out, real.out);
  EXPECT_EQ(prompt_tokens(piped.err), prompt_tokens(real.err));
}

TEST_F(CliHabitsTest, VersionNamesCommitCompilerAndSimd) {
  const Out v = Rgemma("--version");
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(std::regex_search(v.out, std::regex(R"(^rgemma \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}|unknown)\)\n)"))) << v.out;
  EXPECT_TRUE(std::regex_search(v.out, std::regex(R"(compiler: (GCC|clang) \d+\.\d+\.\d+)"))) << v.out;
  EXPECT_TRUE(std::regex_search(v.out, std::regex(R"(SIMD: .*this CPU: (scalar|avx2|avx512).*in use: (scalar|avx2|avx512))")))
      << v.out;
}

}  // namespace
}  // namespace rg::test
