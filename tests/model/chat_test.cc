// `rgemma chat` end to end through piped stdin, on small random models with
// the real Gemma tokenizer (vocab 256000, width 64, layers R,R,A, window 16).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.h"

namespace rg::test {
namespace {

namespace fs = std::filesystem;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

class ChatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("rg_chat_test_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    for (int seed : {3, 4}) {
      const fs::path out = *dir_ / ("model" + std::to_string(seed));
      const CommandResult r = RunCommand(
          std::string(RG_BINARY) + " init --preset 2b --hidden-size 64 --num-heads 2 --num-layers 3 --window 16 "
          "--dtype bf16 --seed " + std::to_string(seed) + " --threads 2 --out " + Quote(out.string()));
      ASSERT_EQ(r.status, 0) << r.output;
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static fs::path Model(int seed = 3) { return *dir_ / ("model" + std::to_string(seed)); }
  static fs::path Tmp(const std::string& name) { return *dir_ / name; }

  struct Run {
    int status;
    std::string out;  // stdout
    std::string err;  // stderr
  };

  // Runs chat with `input` on stdin; stdout and stderr kept apart.
  static Run Chat(const std::string& input, const std::string& flags = "--temperature 0 -n 8 --print-ids",
                  int seed = 3) {
    static int counter = 0;
    const fs::path out = Tmp("stdout" + std::to_string(counter++));
    // { } so that RunCommand's 2>&1 captures stderr only.
    const std::string cmd = "{ " + std::string(RG_BINARY) + " chat -m " + Quote(Model(seed).string()) +
                            " --tokenizer " + Quote(std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model") +
                            " --threads 2 " + flags + " > " + Quote(out.string()) + "; }";
    const CommandResult r = RunCommandWithInput(cmd, input);
    Run run{r.status, ReadFile(out), r.output};
    fs::remove(out);
    return run;
  }

  static fs::path* dir_;
};

fs::path* ChatTest::dir_ = nullptr;

struct TurnStat {
  long turn, prompt, reply, context;
};

std::vector<TurnStat> TurnStats(const std::string& err) {
  std::vector<TurnStat> out;
  const std::regex re(R"(\[turn (\d+)\] prompt (\d+) tok.*\| reply (\d+) tok.*\| context (\d+) tok)");
  for (const std::string& line : Lines(err)) {
    std::smatch m;
    if (std::regex_search(line, m, re))
      out.push_back({std::stol(m[1]), std::stol(m[2]), std::stol(m[3]), std::stol(m[4])});
  }
  return out;
}

TEST_F(ChatTest, ThreeTurnsThroughPipe) {
  const Run r = Chat("Hello there!\nHow are you today?\n\nTell me a story.\n", "--temperature 0 -n 8");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<TurnStat> st = TurnStats(r.err);
  ASSERT_EQ(st.size(), 3u) << r.err;
  long context = 0;
  for (size_t i = 0; i < st.size(); ++i) {
    EXPECT_EQ(st[i].turn, long(i + 1));
    EXPECT_GE(st[i].reply, 0);
    EXPECT_LE(st[i].reply, 8);
    // Each turn feeds only its own tokens: the history is carried, never re-run.
    EXPECT_EQ(st[i].context, context + st[i].prompt + st[i].reply) << r.err;
    context = st[i].context;
  }
  // Turn 1: <bos><start_of_turn>user\nHello there!<end_of_turn>\n<start_of_turn>model\n;
  // later turns add <end_of_turn> (closing the model's turn) and \n in front.
  EXPECT_LT(st[0].prompt, 20);
  EXPECT_LT(st[1].prompt, 20);
  EXPECT_FALSE(r.out.empty());
}

TEST_F(ChatTest, PrintIdsGivesOneLinePerReply) {
  const Run r = Chat("a\nb\nc\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (const std::string& l : lines) EXPECT_TRUE(std::regex_match(l, std::regex(R"(\d+( \d+)*)"))) << l;
}

TEST_F(ChatTest, SavedStateResumesExactlyInANewProcess) {
  const std::string m1 = "Hello there!\n", m2 = "What is the capital of France?\n", m3 = "And of Italy?\n";
  for (const std::string flags : {"--temperature 0 -n 8 --print-ids",
                                  "--temperature 0.9 --seed 11 --repeat-penalty 1.3 -n 8 --print-ids"}) {
    SCOPED_TRACE(flags);
    const fs::path f = Tmp("turn2.state");
    const Run full = Chat(m1 + m2 + m3, flags);
    ASSERT_EQ(full.status, 0) << full.err;
    const std::vector<std::string> want = Lines(full.out);
    ASSERT_EQ(want.size(), 3u) << full.out;

    std::ofstream(f.string() + ".tmp") << "an unrelated file";  // /save's temporary must not take its name
    const Run first = Chat(m1 + m2 + "/save " + f.string() + "\n", flags);
    ASSERT_EQ(first.status, 0) << first.err;
    EXPECT_EQ(Lines(first.out), std::vector<std::string>(want.begin(), want.begin() + 2));
    EXPECT_NE(first.err.find("saved " + f.string()), std::string::npos) << first.err;
    ASSERT_TRUE(fs::exists(f));
    EXPECT_EQ(ReadFile(f.string() + ".tmp"), "an unrelated file");
    fs::remove(f.string() + ".tmp");

    const Run resumed = Chat("/load " + f.string() + "\n" + m3, flags);
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    EXPECT_EQ(Lines(resumed.out), std::vector<std::string>{want[2]}) << resumed.err;
    const std::vector<TurnStat> st = TurnStats(resumed.err), st_full = TurnStats(full.err);
    ASSERT_EQ(st.size(), 1u);
    ASSERT_EQ(st_full.size(), 3u);
    EXPECT_EQ(st[0].turn, 3);
    EXPECT_EQ(st[0].context, st_full[2].context);

    const Run flag = Chat(m3, flags + std::string(" --load ") + f.string());
    ASSERT_EQ(flag.status, 0) << flag.err;
    EXPECT_EQ(Lines(flag.out), std::vector<std::string>{want[2]});
    fs::remove(f);
  }
}

TEST_F(ChatTest, ResetStartsOver) {
  const Run r = Chat("Hi!\nTell me more.\n/reset\nHi!\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[2], lines[0]);
  const std::vector<TurnStat> st = TurnStats(r.err);
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[2].turn, 1);
  EXPECT_EQ(st[2].context, st[0].context);
}

TEST_F(ChatTest, BadStateFilesAreOneLineErrorsAndChatContinues) {
  const fs::path good = Tmp("good.state"), other = Tmp("other.state"), cut = Tmp("cut.state"),
                 junk = Tmp("junk.state"), missing = Tmp("missing.state");
  ASSERT_EQ(Chat("Hi!\n/save " + good.string() + "\n").status, 0);
  const Run o = Chat("Hi!\n/save " + other.string() + "\n", "--temperature 0 -n 8 --print-ids", /*seed=*/4);
  ASSERT_EQ(o.status, 0) << o.err;
  const std::string bytes = ReadFile(good);
  ASSERT_GT(bytes.size(), 100u);
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  {
    std::mt19937 rng(1);
    std::string g(5000, '\0');
    for (char& ch : g) ch = char(rng());
    std::ofstream(junk, std::ios::binary) << g;
  }
  const Run fresh = Chat("Hello!\n");
  ASSERT_EQ(fresh.status, 0);

  const Run r = Chat("/load " + other.string() + "\n/load " + cut.string() + "\n/load " + junk.string() +
                     "\n/load " + missing.string() + "\n/load\nHello!\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("error: " + other.string() + ": state was saved from a different model (same config, "
                       "different weights"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: " + cut.string() + ": truncated state file: ends at byte " +
                       std::to_string(bytes.size() / 2) + " of " + std::to_string(bytes.size())),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: " + junk.string() + ": not an rgemma state file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: " + missing.string() + ": cannot open state file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: /load needs a file name"), std::string::npos) << r.err;
  EXPECT_EQ(Count(r.err, "error: "), 5u) << r.err;
  // The failed loads left the conversation empty: the reply is the fresh one.
  EXPECT_EQ(r.out, fresh.out);

  // --load on the command line: a one-line error and a non-zero exit.
  const Run bad = Chat("Hello!\n", "--temperature 0 --load " + cut.string());
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("rgemma: error: " + cut.string() + ": truncated state file"), std::string::npos) << bad.err;
  EXPECT_TRUE(bad.out.empty());
}

TEST_F(ChatTest, UnknownCommandIsAnErrorAndChatContinues) {
  const Run r = Chat("/frobnicate now\n/save\nHi!\n/quit\nnot read\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("error: unknown command /frobnicate (/help lists the commands)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: /save needs a file name"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;  // "Hi!" answered; nothing after /quit
  EXPECT_EQ(TurnStats(r.err).size(), 1u);
}

TEST_F(ChatTest, SigintStopsTheReplyNotTheProgram) {
  // A reply that would run for ages, Ctrl-C once it has started streaming;
  // the chat then reads the next line (another message, then /quit). A
  // watchdog kills the chat after 30 s so a regression cannot hang the suite.
  const fs::path in = Tmp("sigint.in"), out = Tmp("sigint.out"), err = Tmp("sigint.err");
  std::ofstream(in) << "Tell me everything.\nAgain?\n/quit\n";
  const std::string chat = std::string(RG_BINARY) + " chat -m " + Quote(Model().string()) + " --tokenizer " +
                           Quote(std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model") +
                           " --threads 2 --temperature 0 --print-ids -n 100000000";
  const std::string script =
      chat + " < " + Quote(in.string()) + " > " + Quote(out.string()) + " 2> " + Quote(err.string()) +
      " & p=$!; (sleep 30; kill -KILL $p) >/dev/null 2>&1 & i=0; while [ ! -s " + Quote(out.string()) + " ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
      "sleep 0.2; kill -INT $p; i=0; while ! grep -q 'turn 1' " + Quote(err.string()) +
      " && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.3; kill -INT $p; wait $p; echo rc=$?";
  const CommandResult r = RunCommand(script);
  const std::string e = ReadFile(err);
  EXPECT_NE(r.output.find("rc=0"), std::string::npos) << r.output << e;
  const std::vector<TurnStat> st = TurnStats(e);
  ASSERT_EQ(st.size(), 2u) << e;
  EXPECT_EQ(Count(e, "| interrupted"), 2u) << e;
  EXPECT_GT(st[0].reply, 0);
  EXPECT_EQ(Lines(ReadFile(out)).size(), 2u);
}

TEST_F(ChatTest, SigintAtThePromptExitsCleanly) {
  const fs::path fifo = Tmp("prompt.fifo"), out = Tmp("prompt.out"), err = Tmp("prompt.err");
  const std::string chat = std::string(RG_BINARY) + " chat -m " + Quote(Model().string()) + " --tokenizer " +
                           Quote(std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model") +
                           " --threads 2 --temperature 0 -n 4 --print-ids";
  // `timeout` bounds a chat that hangs and relays the SIGINT to it; a background
  // `sleep 30; kill` watchdog outlived the test and held ctest's pipe for 30 s.
  // --foreground: relay to chat alone; without it timeout also signals its
  // process group, and a second SIGINT during the clean exit ended chat (130).
  const std::string script =
      "mkfifo " + Quote(fifo.string()) + " && { (printf 'Hi!\\n'; exec sleep 30) > " + Quote(fifo.string()) +
      " 2>/dev/null & w=$!; timeout --foreground -s KILL 30 " + chat + " < " + Quote(fifo.string()) + " > " + Quote(out.string()) +
      " 2> " + Quote(err.string()) + " & p=$!; i=0; while ! grep -q 'turn 1' " + Quote(err.string()) +
      " && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.2; kill -INT $p; wait $p; echo rc=$?; "
      "kill $w; }";
  const CommandResult r = RunCommand(script);
  const std::string e = ReadFile(err);
  EXPECT_NE(r.output.find("rc=0"), std::string::npos) << r.output << e;
  EXPECT_EQ(TurnStats(e).size(), 1u) << e;
  EXPECT_EQ(Lines(ReadFile(out)).size(), 1u);
}

}  // namespace
}  // namespace rg::test
