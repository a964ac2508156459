// rgemma score: multiple-choice evaluation by log-likelihood, scored like
// lm-evaluation-harness.
//   rgemma score -m DIR --tasks FILE.jsonl [--output PER_ITEM.jsonl] [--json]
// Each line of FILE.jsonl: {"context": "...", "choices": ["...", ...], "gold": k}
// (or token ids: "context": [2, 17, ...], "choices": [[5, 6], [7], ...], for
// models without a tokenizer; ids are used exactly as given, no BOS added).
// For text, BOS + context is the condition and each choice's tokens are
// scored as lm-evaluation-harness does (_encode_pair: trailing spaces of the
// context move to the continuation; the continuation is what encoding
// context + choice adds after the context's tokens).
//   acc      = mean [argmax_i loglik(choice_i) == gold]
//   acc_norm = mean [argmax_i loglik(choice_i) / len(choice_i in characters) == gold]
// The context is run once per item; its state is copied for every choice.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "cli/progress.h"
#include "core/error.h"
#include "generate/session.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

using json = nlohmann::json;

struct ScoreArgs {
  std::string model, tokenizer, tasks, output;
  bool json_out = false, quiet = false;
  int threads = 0;
  int64_t limit = 0;
  size_t max_file_bytes = size_t(1) << 30;
};

double LogSoftmaxAt(const float* row, int64_t V, int32_t id) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - mx);
  return double(row[id]) - mx - std::log(sum);
}

int64_t ArgMax(const float* row, int64_t V) {
  int64_t b = 0;
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > row[b]) b = i;
  return b;
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<int32_t> Ids(const json& j, const std::string& what, int64_t V) {
  RG_CHECK(j.is_array(), what, ": expected an array of token ids");
  std::vector<int32_t> ids;
  for (const json& v : j) {
    RG_CHECK(v.is_number_integer(), what, ": expected integer token ids");
    const int64_t id = v.get<int64_t>();
    RG_CHECK(id >= 0 && id < V, what, ": token id ", id, " is outside the vocabulary [0, ", V, ")");
    ids.push_back(int32_t(id));
  }
  return ids;
}

struct Item {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> choices;
  std::vector<size_t> choice_chars;  // for acc_norm
  int gold = 0;
};

Item ParseItem(const std::string& line, size_t lineno, const std::string& file, const Tokenizer* tok, const Config& c) {
  const std::string where = file + ":" + std::to_string(lineno);
  json j = json::parse(line, nullptr, false);
  RG_CHECK(!j.is_discarded() && j.is_object(), where, ": not a JSON object");
  RG_CHECK(j.contains("context") && j.contains("choices") && j.contains("gold"), where,
           ": needs \"context\", \"choices\" and \"gold\"");
  const json& ch = j["choices"];
  RG_CHECK(ch.is_array() && !ch.empty(), where, ": \"choices\" must be a non-empty array");
  RG_CHECK(j["gold"].is_number_integer(), where, ": \"gold\" must be an integer");
  Item it;
  it.gold = j["gold"].get<int>();
  RG_CHECK(it.gold >= 0 && size_t(it.gold) < ch.size(), where, ": gold ", it.gold, " is not a choice index [0, ",
           ch.size(), ")");
  if (j["context"].is_array()) {
    it.context = Ids(j["context"], where + " context", c.vocab_size);
    RG_CHECK(!it.context.empty(), where, ": the context is empty (start it with BOS = ", c.bos_id, ")");
    for (size_t i = 0; i < ch.size(); ++i) {
      it.choices.push_back(Ids(ch[i], where + " choices[" + std::to_string(i) + "]", c.vocab_size));
      RG_CHECK(!it.choices.back().empty(), where, ": choice ", i, " is empty");
      it.choice_chars.push_back(it.choices.back().size());
    }
    return it;
  }
  RG_CHECK(j["context"].is_string(), where, ": \"context\" must be a string or an array of token ids");
  RG_CHECK(tok, where, ": text tasks need a tokenizer (this model has none; give token ids)");
  std::string context = j["context"].get<std::string>();
  // lm-evaluation-harness _encode_pair: trailing spaces go to the continuation.
  size_t spaces = 0;
  while (spaces < context.size() && context[context.size() - 1 - spaces] == ' ') ++spaces;
  const std::string moved = context.substr(context.size() - spaces);
  context.resize(context.size() - spaces);
  it.context.push_back(c.bos_id);
  for (int id : tok->Encode(context)) it.context.push_back(id);
  for (size_t i = 0; i < ch.size(); ++i) {
    RG_CHECK(ch[i].is_string(), where, ": choices[", i, "] must be a string");
    const std::string cont = moved + ch[i].get<std::string>();
    std::vector<int32_t> whole = {c.bos_id};
    for (int id : tok->Encode(context + cont)) whole.push_back(id);
    std::vector<int32_t> part(whole.begin() + long(std::min(whole.size(), it.context.size())), whole.end());
    RG_CHECK(!part.empty(), where, ": choice ", i, " adds no tokens to the context");
    it.choices.push_back(std::move(part));
    it.choice_chars.push_back(CodePoints(ch[i].get<std::string>()));
  }
  return it;
}

double Stderr(double p, size_t n) { return n > 1 ? std::sqrt(p * (1 - p) / double(n - 1)) : 0.0; }

void RunScore(const ScoreArgs& a) {
  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, /*quiet=*/true, /*show_progress=*/!a.quiet);
  const Config& c = weights->config;
  const int64_t V = c.vocab_size;
  auto tok = LoadTokenizerFor(a.model, a.tokenizer, /*required=*/false);

  std::ifstream in(a.tasks);
  RG_CHECK(in, a.tasks, ": cannot open");
  std::vector<std::string> lines;
  {
    std::string line;
    size_t bytes = 0;
    while (std::getline(in, line)) {
      bytes += line.size();
      RG_CHECK(bytes <= a.max_file_bytes, a.tasks, ": larger than ", a.max_file_bytes, " bytes");
      lines.push_back(line);
    }
  }
  std::ofstream out;
  if (!a.output.empty()) {
    out.open(a.output);
    RG_CHECK(out, a.output, ": cannot write");
  }

  constexpr int64_t kChunk = 32;
  Session session(weights, pool);
  State snapshot(c);
  std::vector<float> ctx_logits(static_cast<size_t>(V)), rows(static_cast<size_t>(kChunk * V));
  size_t n = 0, correct = 0, correct_norm = 0;
  double total_ll = 0;
  std::unique_ptr<Progress> progress;
  if (!a.quiet) progress = std::make_unique<Progress>("score", lines.size());
  for (size_t li = 0; li < lines.size(); ++li) {
    if (a.limit > 0 && int64_t(n) >= a.limit) break;
    if (lines[li].find_first_not_of(" \t\r") == std::string::npos) {
      if (progress) progress->Add(1);
      continue;
    }
    const Item it = ParseItem(lines[li], li + 1, a.tasks, tok.get(), c);
    session.Reset();
    const float* last = session.Prefill(it.context);
    std::copy(last, last + V, ctx_logits.begin());
    snapshot.CopyFrom(session.state());
    std::vector<double> lls;
    std::vector<bool> greedy;
    for (const std::vector<int32_t>& cont : it.choices) {
      session.state().CopyFrom(snapshot);
      double ll = LogSoftmaxAt(ctx_logits.data(), V, cont[0]);
      bool is_greedy = ArgMax(ctx_logits.data(), V) == cont[0];
      // Logits after cont[j] predict cont[j + 1].
      for (size_t j0 = 0; j0 + 1 < cont.size(); j0 += size_t(kChunk)) {
        const size_t m = std::min<size_t>(size_t(kChunk), cont.size() - 1 - j0);
        session.ForwardAll(std::span<const int32_t>(cont.data() + j0, m), rows.data());
        for (size_t k = 0; k < m; ++k) {
          const float* row = rows.data() + k * size_t(V);
          ll += LogSoftmaxAt(row, V, cont[j0 + k + 1]);
          is_greedy = is_greedy && ArgMax(row, V) == cont[j0 + k + 1];
        }
      }
      lls.push_back(ll);
      greedy.push_back(is_greedy);
    }
    size_t pred = 0, pred_norm = 0;
    for (size_t i = 1; i < lls.size(); ++i) {
      if (lls[i] > lls[pred]) pred = i;
      const double ni = lls[i] / double(std::max<size_t>(1, it.choice_chars[i]));
      const double nb = lls[pred_norm] / double(std::max<size_t>(1, it.choice_chars[pred_norm]));
      if (ni > nb) pred_norm = i;
    }
    ++n;
    correct += pred == size_t(it.gold);
    correct_norm += pred_norm == size_t(it.gold);
    total_ll += lls[size_t(it.gold)];
    if (out) {
      json r = {{"line", li + 1}, {"loglikelihoods", lls}, {"is_greedy", greedy}, {"gold", it.gold},
                {"pred", pred}, {"pred_norm", pred_norm}};
      out << r.dump() << "\n";
    }
    if (progress) progress->Add(1);
  }
  if (progress) progress->Done();
  RG_CHECK(n > 0, a.tasks, ": no tasks");
  const double acc = double(correct) / double(n), acc_norm = double(correct_norm) / double(n);
  if (a.json_out) {
    json r = {{"tasks", a.tasks}, {"n", n}, {"acc", acc}, {"acc_stderr", Stderr(acc, n)}, {"acc_norm", acc_norm},
              {"acc_norm_stderr", Stderr(acc_norm, n)}, {"mean_gold_loglikelihood", total_ll / double(n)}};
    std::printf("%s\n", r.dump(2).c_str());
  } else {
    std::printf("%s: %zu items | acc %.4f ± %.4f | acc_norm %.4f ± %.4f\n", a.tasks.c_str(), n, acc, Stderr(acc, n),
                acc_norm, Stderr(acc_norm, n));
  }
}

}  // namespace

void RegisterScore(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* cmd = app.add_subcommand("score", "Multiple-choice accuracy by log-likelihood (lm-evaluation-harness style)");
  cmd->add_option("--model,-m", a->model, "Model directory")->required();
  cmd->add_option("--tasks", a->tasks, "JSONL: {\"context\", \"choices\", \"gold\"} per line")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model (default: the model directory's)");
  cmd->add_option("--output,-o", a->output, "Write per-item log-likelihoods here (JSONL)");
  cmd->add_option("--limit", a->limit, "Score only the first N items")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_flag("--json", a->json_out, "Print the summary as JSON");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->callback([a] { RunScore(*a); });
}

}  // namespace rg::cli
