// `rgemma perplexity` and `rgemma score` against the reference fixtures: the
// log-likelihoods they compute equal log-softmax of the reference logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/safetensors.h"
#include "subprocess.h"

namespace rg::test {
namespace {

using json = nlohmann::json;

const std::string kBin = RG_BINARY;
const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";

struct Ref {
  std::vector<int32_t> tokens;
  const float* logits;
  int64_t V;
};

double LogSoftmaxAt(const float* row, int64_t V, int32_t id) {
  double mx = -1e300, sum = 0;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - mx);
  return double(row[id]) - mx - std::log(sum);
}

class ScoreCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    expected_ = SafetensorsFile::Open(kTiny + "/expected.safetensors");
    // The longest case.
    const TensorView* t = nullptr;
    const TensorView* l = nullptr;
    for (const TensorView& tv : expected_->tensors()) {
      if (tv.name.rfind("tokens.", 0) != 0) continue;
      if (!t || tv.numel() > t->numel()) {
        t = &tv;
        l = expected_->Find("logits." + tv.name.substr(7));
      }
    }
    ASSERT_TRUE(t && l);
    ref_.tokens.resize(size_t(t->numel()));
    std::memcpy(ref_.tokens.data(), t->data, ref_.tokens.size() * 4);
    ref_.logits = static_cast<const float*>(l->data);
    ref_.V = l->shape[1];
    ASSERT_GE(ref_.tokens.size(), 8u);
  }
  std::string Ids(size_t from, size_t to) const {
    std::string s;
    for (size_t i = from; i < to; ++i) {
      if (i > from) s += ',';
      s += std::to_string(ref_.tokens[i]);
    }
    return s;
  }
  std::string Tmp(const std::string& name) const {
    return (std::filesystem::temp_directory_path() / ("rg_score_" + std::to_string(getpid()) + "_" + name)).string();
  }
  std::unique_ptr<SafetensorsFile> expected_;
  Ref ref_;
};

TEST_F(ScoreCliTest, PerplexityEqualsReferenceLogits) {
  const CommandResult r = RunCommand(kBin + " perplexity -m " + kTiny + " --ids " + Ids(0, ref_.tokens.size()) +
                                     " --json -q 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  const json j = json::parse(r.output);
  double nll = 0;
  for (size_t t = 1; t < ref_.tokens.size(); ++t) nll -= LogSoftmaxAt(ref_.logits + (t - 1) * ref_.V, ref_.V, ref_.tokens[t]);
  nll /= double(ref_.tokens.size() - 1);
  EXPECT_EQ(j["tokens_scored"], int64_t(ref_.tokens.size() - 1));
  EXPECT_NEAR(j["nll_per_token"].get<double>(), nll, 1e-3);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(nll), std::exp(nll) * 1e-3);
}

TEST_F(ScoreCliTest, PerplexityWithContextRestartsTheState) {
  // --ctx 4: contexts of 4 tokens; after the first, each starts with BOS (not scored).
  const std::string ids = Ids(0, 8);
  const CommandResult r = RunCommand(kBin + " perplexity -m " + kTiny + " --ids " + ids + " --ctx 4 --json -q 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["tokens_scored"], 7);
  const CommandResult bad = RunCommand(kBin + " perplexity -m " + kTiny + " --ids " + ids + " --ctx 1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--ctx"), std::string::npos) << bad.output;
}

TEST_F(ScoreCliTest, ScoreLogLikelihoodsEqualReference) {
  // Context = the first k reference tokens; choice 0 = the true next 3 tokens,
  // the others single tokens: all computable from the reference logits.
  const size_t k = 5;
  const int64_t V = ref_.V;
  const std::string tasks = Tmp("tasks.jsonl"), out = Tmp("out.jsonl");
  std::vector<std::vector<int32_t>> choices = {{ref_.tokens[k], ref_.tokens[k + 1], ref_.tokens[k + 2]}, {7}, {300}};
  {
    std::ofstream f(tasks);
    json item = {{"context", std::vector<int32_t>(ref_.tokens.begin(), ref_.tokens.begin() + k)},
                 {"choices", choices},
                 {"gold", 0}};
    f << item.dump() << "\n\n" << item.dump() << "\n";
  }
  const CommandResult r = RunCommand(kBin + " score -m " + kTiny + " --tasks " + tasks + " -o " + out + " --json -q 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  const json summary = json::parse(r.output);
  EXPECT_EQ(summary["n"], 2);
  std::ifstream in(out);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const json item = json::parse(line);
  double want0 = 0;
  for (size_t j = 0; j < 3; ++j) want0 += LogSoftmaxAt(ref_.logits + (k - 1 + j) * V, V, ref_.tokens[k + j]);
  const auto& lls = item["loglikelihoods"];
  EXPECT_NEAR(lls[0].get<double>(), want0, 1e-3);
  EXPECT_NEAR(lls[1].get<double>(), LogSoftmaxAt(ref_.logits + (k - 1) * V, V, 7), 1e-3);
  EXPECT_NEAR(lls[2].get<double>(), LogSoftmaxAt(ref_.logits + (k - 1) * V, V, 300), 1e-3);
  // acc follows from the log-likelihoods.
  int best = 0;
  for (int i = 1; i < 3; ++i)
    if (lls[i].get<double>() > lls[best].get<double>()) best = i;
  EXPECT_EQ(item["pred"], best);
  EXPECT_DOUBLE_EQ(summary["acc"].get<double>(), best == 0 ? 1.0 : 0.0);
  std::filesystem::remove(tasks);
  std::filesystem::remove(out);
}

TEST_F(ScoreCliTest, BadTaskFilesAreOneLineErrors) {
  const std::string tasks = Tmp("bad.jsonl");
  for (const std::string& body : {std::string("{\"context\": [2], \"choices\": [[5]], \"gold\": 3}"),
                                  std::string("not json"), std::string("{\"context\": \"text\", \"choices\": [\"a\"], \"gold\": 0}"),
                                  std::string("{\"context\": [2, 9999], \"choices\": [[5]], \"gold\": 0}")}) {
    std::ofstream(tasks) << body << "\n";
    const CommandResult r = RunCommand(kBin + " score -m " + kTiny + " --tasks " + tasks + " -q");
    EXPECT_EQ(r.status, 1) << body;
    EXPECT_NE(r.output.find("rgemma: error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(":1"), std::string::npos) << r.output;  // names the line
  }
  std::filesystem::remove(tasks);
}

TEST_F(ScoreCliTest, TextPerplexityDoesNotDependOnTheBlockSize) {
  const std::string dir = Tmp("model");
  std::filesystem::remove_all(dir);
  const CommandResult init = RunCommand(kBin + " init --preset 2b --hidden-size 64 --num-heads 2 --num-layers 3 --window 16 " +
                                        "--vocab-size 256000 --dtype bf16 --seed 3 --tokenizer " + RG_SOURCE_DIR +
                                        "/models/tokenizer/tokenizer.model --out " + dir);
  ASSERT_EQ(init.status, 0) << init.output;
  const std::string text = Tmp("text.txt");
  {
    std::ofstream f(text);
    for (int i = 0; i < 30; ++i) f << "Line " << i << " of the text, with some words.\n" << (i % 4 == 0 ? "\n\n" : "");
  }
  std::string first;
  for (const char* block : {"256", "65536"}) {
    const CommandResult r = RunCommand(kBin + " perplexity -m " + dir + " -f " + text + " --block-bytes " + block + " --json -q 2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.output;
    const json j = json::parse(r.output);
    const std::string key = std::to_string(j["tokens_scored"].get<int64_t>()) + " " + std::to_string(j["nll_per_token"].get<double>());
    if (first.empty()) first = key;
    EXPECT_EQ(key, first) << "block " << block;
  }
  // --max-tokens N scores exactly the first N tokens after BOS, whatever the
  // block and run sizes (a text of well over 129 tokens).
  for (const int n : {1, 63, 64, 65, 100, 129}) {
    const CommandResult r = RunCommand(kBin + " perplexity -m " + dir + " -f " + text + " --max-tokens " +
                                       std::to_string(n) + " --block-bytes 256 --json -q 2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(json::parse(r.output)["tokens_scored"], n) << "--max-tokens " << n;
  }
  const CommandResult tasks_run = [&] {
    const std::string tasks = Tmp("text_tasks.jsonl");
    std::ofstream(tasks) << R"({"context": "Question: is the sky blue? Answer: ", "choices": ["yes", "no"], "gold": 0})" << "\n";
    return RunCommand(kBin + " score -m " + dir + " --tasks " + tasks + " -q");
  }();
  EXPECT_EQ(tasks_run.status, 0) << tasks_run.output;
  EXPECT_NE(tasks_run.output.find("acc_norm"), std::string::npos);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(text);
}

}  // namespace
}  // namespace rg::test
