// Model files that are not regular files are refused at once with their
// path (a FIFO would block, /dev/zero would never end), and the errors of
// bad paths and flags say what is wrong in one line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "subprocess.h"
#include "thread_limit.h"
#include "test_paths.h"
#include "temp_dir.h"

namespace rg::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

class InputFiles : public TempDirTest {
 protected:
  // A copy of the tiny fixture with `file` replaced by a FIFO or a symlink
  // to /dev/zero.
  std::string ModelWith(const std::string& name, const std::string& file, bool fifo) {
    const std::string dir = P(name);
    fs::copy(kTiny, dir);
    fs::remove(dir + "/" + file);
    if (fifo) EXPECT_EQ(mkfifo((dir + "/" + file).c_str(), 0644), 0);
    else fs::create_symlink("/dev/zero", dir + "/" + file);
    return dir;
  }

  // One line on stderr naming `path`, within a few seconds (`timeout` turns a
  // hang into exit 124).
  static void ExpectRefused(const std::string& args, const std::string& path, const std::string& kind) {
    const CommandResult r = RunCommand("(timeout 20 " + kBin + " " + args + " 2>&1 >/dev/null)");
    EXPECT_EQ(r.status, 1) << args << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(path + ": the ")) << args;
    EXPECT_THAT(r.output, HasSubstr("must be a regular file, and this is " + kind)) << args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
};

TEST_F(InputFiles, NonRegularModelFilesAreRefused) {
  for (const bool fifo : {true, false}) {
    const std::string kind = fifo ? "a FIFO" : "a character device";
    const std::string tag = fifo ? "fifo" : "zero";
    std::string m = ModelWith("config_" + tag, "config.json", fifo);
    ExpectRefused("generate -m " + m + " --prompt-ids 2,3 --print-ids", m + "/config.json", kind);
    m = ModelWith("weights_" + tag, "model.safetensors", fifo);
    ExpectRefused("generate -m " + m + " --prompt-ids 2,3 --print-ids", m + "/model.safetensors", kind);
    m = ModelWith("tokenizer_" + tag, "cases.json", fifo);  // any copy: the tokenizer goes in below
    const std::string tok = m + "/tokenizer.model";
    if (fifo) ASSERT_EQ(mkfifo(tok.c_str(), 0644), 0);
    else fs::create_symlink("/dev/zero", tok);
    ExpectRefused("generate -m " + m + " -p hello", tok, kind);
    ExpectRefused("tokenize --tokenizer " + tok, tok, kind);
    ExpectRefused("quantize -m " + m + " --to q8 --out " + P("q_" + tag), tok, kind);
  }
  // The index of a sharded checkpoint.
  const std::string sharded = P("sharded");
  ASSERT_EQ(RunCommand(kBin + " init --preset 2b --hidden-size 32 --num-heads 2 --num-layers 3 --window 8 "
                       "--vocab-size 300 --out " + sharded).status, 0);
  fs::remove(sharded + "/model.safetensors.index.json");
  fs::create_symlink("/dev/zero", sharded + "/model.safetensors.index.json");
  ExpectRefused("generate -m " + sharded + " --prompt-ids 2,3 --print-ids", sharded + "/model.safetensors.index.json",
                "a character device");
}

TEST_F(InputFiles, UnreadableConfigSaysWhy) {
  // A symlink loop: the errno text, not only "cannot open".
  const std::string m = P("loop");
  fs::copy(kTiny, m);
  fs::remove(m + "/config.json");
  fs::create_symlink("config.json", m + "/config.json");
  CommandResult r = RunCommand(kBin + " generate -m " + m + " --prompt-ids 2,3 --print-ids");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr(m + "/config.json: cannot open the model config: Too many levels of symbolic links"));
  // Without read permission (as another user when running as root, who may read anything).
  const std::string locked = P("locked");
  fs::copy(kTiny, locked);
  fs::permissions(locked + "/config.json", fs::perms::none);
  fs::permissions(root_, fs::perms::all);
  const std::string as_user = geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups -- " : "";
  r = RunCommand(as_user + ForAnyUser(kBin) + " generate -m " + locked + " --prompt-ids 2,3 --print-ids");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr(locked + "/config.json: cannot open the model config: Permission denied"));
}

TEST_F(InputFiles, ClearErrorsForBadPathsAndFlags) {
  auto expect_error = [](const std::string& args, const std::string& phrase) {
    const CommandResult r = RunCommand("(timeout 20 " + kBin + " " + args + " 2>&1 >/dev/null)");
    EXPECT_NE(r.status, 0) << args;
    EXPECT_THAT(r.output, HasSubstr(phrase)) << args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
    return r.output;
  };
  // An empty path is refused by name, not read as "/config.json".
  for (const char* cmd : {"generate -m '' --prompt-ids 2,3", "serve -m ''", "score -m '' --tasks x",
                          "perplexity -m '' --ids 2,3", "chat -m ''", "quantize -m '' --to q8 --out x"})
    EXPECT_THAT(expect_error(cmd, "--model: must not be empty"), Not(HasSubstr("/config.json")));
  expect_error("quantize -m " + kTiny + " --to q8 --out ''", "--out: must not be empty");
  expect_error("init --preset 2b --out ''", "--out: must not be empty");
  // Directories where files are expected.
  expect_error("perplexity -m " + kTiny + " -f " + root_.string(), root_.string() + ": is a directory");
  expect_error("score -m " + kTiny + " --tasks " + root_.string(), root_.string() + ": is a directory");
  // A command without a tokenizer names its own way out, not another command's flag.
  std::ofstream(P("text.txt")) << "some text\n";
  EXPECT_THAT(expect_error("perplexity -m " + kTiny + " -f " + P("text.txt"), "no tokenizer.model"),
              AllOf(HasSubstr("--ids"), Not(HasSubstr("--prompt-ids"))));
  EXPECT_THAT(expect_error("chat -q -m " + kTiny, "no tokenizer.model"), Not(HasSubstr("--prompt-ids")));
  // --tokenizer none: no tokenizer (ids only), as its help says.
  expect_error("generate -m " + kTiny + " --tokenizer none -p hello", "--tokenizer none: this needs a tokenizer");
  CommandResult r = RunCommand(kBin + " generate -m " + kTiny + " --tokenizer none --prompt-ids 2,3 -n 2 "
                               "--temperature 0 --print-ids -q");
  EXPECT_EQ(r.status, 0) << r.output;
  const std::string port = P("port");
  r = RunCommand("{ " + kBin + " serve -m " + kTiny + " --tokenizer none --port 0 --port-file " + port +
                 " & pid=$!; for i in $(seq 100); do [ -s " + port + " ] && break; sleep 0.1; done; kill $pid; "
                 "wait $pid; }");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("token ids only"));
  EXPECT_THAT(r.output, Not(HasSubstr("not found")));
}

}  // namespace
}  // namespace rg::test
