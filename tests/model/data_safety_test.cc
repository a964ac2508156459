// Nothing a user does loses data: output directories are written whole or
// not at all (init, quantize), an input is never overwritten through another
// spelling of its path, write errors fail the command, and temporary files
// never take the name of an unrelated file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "subprocess.h"
#include "test_paths.h"
#include "temp_dir.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Every file under `dir` (relative name -> bytes).
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = ReadFile(e.path());
  return out;
}

// Names in `dir` beginning with '.' (temporary directories left behind).
int HiddenEntries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string()[0] == '.';
  return n;
}

// A model of a few MB in many shards: writing it takes long enough to be
// interrupted between shards.
std::string InitArgs(int seed, const std::string& shard_gb = "0.001") {
  return " init --preset 2b --hidden-size 256 --num-heads 2 --num-layers 6 --window 8 --vocab-size 8192"
         " --dtype bf16 --threads 1 --shard-gb " + shard_gb + " --seed " + std::to_string(seed);
}

class DataSafety : public TempDirTest {
 protected:
  // Runs `args` with the test directory as the working directory.
  CommandResult Rg(const std::string& args) const {
    return RunCommand("cd " + root_.string() + " || exit 99; " + kBin + " " + args);
  }
  std::string Ids(const std::string& model) const {
    const CommandResult r = RunCommand(kBin + " generate -m " + model + " --prompt-ids 2,3,4 -n 4 --temperature 0 "
                                       "--ignore-eos --print-ids -q");
    EXPECT_EQ(r.status, 0) << model;
    return r.output;
  }
};

TEST_F(DataSafety, QuantizeRefusesItsInputUnderAnySpelling) {
  fs::copy(kTiny, P("qs"));
  fs::create_directory_symlink("qs", P("link"));
  const auto before = Snapshot(P("qs"));
  for (const std::string& out : std::vector<std::string>{"qs", "qs/", "./qs", "./qs/", "link", P("qs"), P("link") + "/"}) {
    const CommandResult r = Rg("quantize -m qs --to q8 --out " + out + " --force");
    EXPECT_EQ(r.status, 1) << out << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("is the input directory")) << out;
    EXPECT_EQ(Snapshot(P("qs")), before) << "--out " << out << " changed the input";
  }
  // And through the input's spellings too.
  const CommandResult r = Rg("quantize -m ./link/ --to q8 --out qs");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(Snapshot(P("qs")), before);
  EXPECT_EQ(HiddenEntries(root_), 0) << "nothing was started";
}

TEST_F(DataSafety, QuantizeForceNeverDeletesTheInput) {
  fs::create_directories(P("models"));
  fs::copy(kTiny, P("models/tiny"));
  const auto before = Snapshot(P("models/tiny"));
  const CommandResult r = Rg("quantize -m models/tiny --to q8 --out models --force");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("contains the input directory"));
  EXPECT_EQ(Snapshot(P("models/tiny")), before);
}

TEST_F(DataSafety, OutputIntoANonEmptyDirectoryIsRefusedWithoutForce) {
  ASSERT_EQ(Rg(InitArgs(1) + " --out m").status, 0);
  const auto before = Snapshot(P("m"));
  const std::string ids = Ids(P("m"));
  CommandResult r = Rg(InitArgs(2) + " --out m");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--out m: the directory is not empty"));
  r = Rg("quantize -m " + kTiny + " --to q8 --out m");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--force"));
  EXPECT_EQ(Snapshot(P("m")), before);
  EXPECT_EQ(Ids(P("m")), ids);
  // An empty directory is fine.
  fs::create_directory(P("empty"));
  EXPECT_EQ(Rg("quantize -m " + kTiny + " --to q8 --out empty").status, 0);
  EXPECT_EQ(Ids(P("empty")), Ids(kTiny + "/"));
}

TEST_F(DataSafety, ForceReplacesTheWholeDirectory) {
  ASSERT_EQ(Rg(InitArgs(1) + " --out m").status, 0);
  ASSERT_GT(Snapshot(P("m")).size(), 4u) << "several shards";
  // One shard now: the old shards must not stay beside it.
  ASSERT_EQ(Rg(InitArgs(2, "1") + " --out m --force").status, 0);
  ASSERT_EQ(Rg(InitArgs(2, "1") + " --out fresh").status, 0);
  EXPECT_EQ(Snapshot(P("m")), Snapshot(P("fresh")));
  // quantize --force into another model's directory leaves a model that loads.
  const CommandResult r = Rg("quantize -m " + kTiny + " --to q8 --out m --force");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(Snapshot(P("m")).size(), 2u) << "config.json and model.safetensors only";
  EXPECT_EQ(Ids(P("m")), Ids(kTiny));
  EXPECT_EQ(HiddenEntries(root_), 0) << "no temporary directory left behind";
}

// Starts `args` in the test directory and SIGKILLs it as soon as a new file
// whose name contains `marker` exists anywhere under it. Returns false if
// the command finished first.
bool KillWhenWritten(const fs::path& root, const std::string& args, const std::string& marker) {
  std::set<fs::path> before;
  for (const auto& e : fs::recursive_directory_iterator(root)) before.insert(e.path());
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(root.c_str()) != 0) _exit(127);
    execl("/bin/sh", "sh", "-c", ("exec " + kBin + " " + args + " 2>/dev/null").c_str(), nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->path().filename().string().find(marker) != std::string::npos && !before.count(it->path())) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return true;
      }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return false;
}

TEST_F(DataSafety, KilledWriterLeavesTheOldModelWhole) {
  ASSERT_EQ(Rg(InitArgs(1) + " --out m").status, 0);
  const auto before = Snapshot(P("m"));
  const std::string ids = Ids(P("m"));
  // Without --force the second init must not even start writing; with it,
  // a kill half-way must leave the first model as it was.
  for (const std::string flags : {"", " --force"}) {
    const bool killed = KillWhenWritten(root_, InitArgs(2) + " --out m" + flags, "model-00003-of-");
    if (!flags.empty()) {
      EXPECT_TRUE(killed) << "init finished before the third shard was seen";
    }
    EXPECT_EQ(Snapshot(P("m")), before) << "init" << flags << " changed the directory";
    EXPECT_EQ(Ids(P("m")), ids);
  }
}

TEST_F(DataSafety, WriteErrorsFailTheCommand) {
  auto expect_fails = [&](const std::string& args) {
    const CommandResult r = RunCommand("(" + args + ")");  // stderr, not stdout, comes back
    EXPECT_EQ(r.status, 1) << args << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("write failed")) << args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  expect_fails("echo '{\"text\": \"hello\"}' | " + kBin + " tokenize --tokenizer " + kTokenizer + " > /dev/full");
  expect_fails(kBin + " generate -m " + kTiny + " --prompt-ids 2,3 -n 3 --print-ids -q > /dev/full");
  expect_fails(kBin + " perplexity -m " + kTiny + " --ids 2,3,4,5 --json -q > /dev/full");
  std::string tasks;
  for (int i = 0; i < 40; ++i) tasks += "{\"context\": [2, 3], \"choices\": [[4], [5, 6]], \"gold\": 0}\n";
  std::ofstream(P("tasks.jsonl")) << tasks;
  expect_fails(kBin + " score -m " + kTiny + " --tasks " + P("tasks.jsonl") + " -q > /dev/full");
  // -o on a full file system (here: over the file size limit), and onto a
  // device, which is written in place, not replaced.
  expect_fails("ulimit -f 1; " + kBin + " score -m " + kTiny + " --tasks " + P("tasks.jsonl") + " -q -o " +
               P("out.jsonl"));
  EXPECT_FALSE(fs::exists(P("out.jsonl")));
  // Through a link of our own: a build that renamed over the device instead
  // of writing it would replace only the link, never /dev/full.
  fs::create_symlink("/dev/full", P("full"));
  expect_fails(kBin + " score -m " + kTiny + " --tasks " + P("tasks.jsonl") + " -q -o " + P("full"));
  EXPECT_TRUE(fs::is_symlink(P("full")));
  EXPECT_TRUE(fs::is_character_file("/dev/full"));
}

TEST_F(DataSafety, TemporaryNamesNeverClobberOtherFiles) {
  // --port-file, forward --out and score -o next to a PATH.tmp of the user's.
  for (const std::string name : {"port", "logits.safetensors", "per_item.jsonl"})
    std::ofstream(P(name + ".tmp")) << "the user's file";
  const CommandResult serve = Rg("serve -m " + kTiny + " --port 0 --port-file port -q & pid=$!; "
                                 "for i in $(seq 100); do [ -s port ] && break; sleep 0.1; done; kill $pid; wait $pid");
  EXPECT_TRUE(fs::exists(P("port"))) << serve.output;
  EXPECT_EQ(Rg("forward -m " + kTiny + " --tokens " + kTiny + "/expected.safetensors --out logits.safetensors").status, 0);
  std::ofstream(P("tasks.jsonl")) << "{\"context\": [2, 3], \"choices\": [[4], [5]], \"gold\": 0}\n";
  EXPECT_EQ(Rg("score -m " + kTiny + " --tasks tasks.jsonl -q -o per_item.jsonl").status, 0);
  for (const std::string name : {"port", "logits.safetensors", "per_item.jsonl"}) {
    EXPECT_EQ(ReadFile(P(name + ".tmp")), "the user's file") << name;
    EXPECT_TRUE(fs::exists(P(name))) << name;
  }
  EXPECT_EQ(HiddenEntries(root_), 0) << "no temporary file left behind";
}

TEST_F(DataSafety, ScoreRefusesToOverwriteItsTasks) {
  const std::string tasks = "{\"context\": [2, 3], \"choices\": [[4], [5]], \"gold\": 0}\n";
  std::ofstream(P("tasks.jsonl")) << tasks;
  fs::create_symlink("tasks.jsonl", P("link.jsonl"));
  for (const std::string& out : std::vector<std::string>{"tasks.jsonl", "./tasks.jsonl", "link.jsonl", P("tasks.jsonl")}) {
    const CommandResult r = Rg("score -m " + kTiny + " --tasks tasks.jsonl -q -o " + out);
    EXPECT_EQ(r.status, 1) << out << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("is the tasks file")) << out;
    EXPECT_EQ(ReadFile(P("tasks.jsonl")), tasks) << out;
  }
}

}  // namespace
}  // namespace rg::test
