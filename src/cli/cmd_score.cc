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
#include <condition_variable>
#include <filesystem>
#include <mutex>
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
#include "core/file_io.h"
#include "generate/engine.h"
#include "tokenizer/encode_text.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

using json = nlohmann::json;

struct ScoreArgs {
  ModelFlags m;
  std::string tasks, output;
  bool json_out = false, quiet = false;
  int parallel = 4;
  int64_t limit = 0;
  size_t max_file_bytes = size_t(1) << 30;
};

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
  for (int32_t id : EncodeText(*tok, context)) it.context.push_back(id);
  for (size_t i = 0; i < ch.size(); ++i) {
    RG_CHECK(ch[i].is_string(), where, ": choices[", i, "] must be a string");
    const std::string cont = moved + ch[i].get<std::string>();
    std::vector<int32_t> whole = {c.bos_id};
    for (int32_t id : EncodeText(*tok, context + cont)) whole.push_back(id);
    std::vector<int32_t> part(whole.begin() + long(std::min(whole.size(), it.context.size())), whole.end());
    RG_CHECK(!part.empty(), where, ": choice ", i, " adds no tokens to the context");
    it.choices.push_back(std::move(part));
    it.choice_chars.push_back(CodePoints(ch[i].get<std::string>()));
  }
  return it;
}

double Stderr(double p, size_t n) { return n > 1 ? std::sqrt(p * (1 - p) / double(n - 1)) : 0.0; }

std::string Fixed4(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", x);
  return buf;
}

// Log-likelihood of each choice given the context, and whether each was the
// greedy continuation. The context runs once: its end-of-prompt snapshot
// (with the logits that predict the first choice token) is in the engine's
// state cache, and every choice resumes from it, the choices side by side.
struct ChoiceScore {
  double loglik = 0;
  bool greedy = true;
};

std::vector<ChoiceScore> ScoreItem(Engine& engine, const Item& it) {
  Request ctx;
  ctx.prompt = it.context;
  ctx.max_tokens = 0;
  const Result r = engine.Run(std::move(ctx));
  RG_CHECK(r.reason != FinishReason::kError, "score: ", r.error);

  std::vector<ChoiceScore> out(it.choices.size());
  std::vector<Request> reqs;
  for (size_t i = 0; i < it.choices.size(); ++i) {
    Request q;
    q.prompt = it.context;
    q.prompt.insert(q.prompt.end(), it.choices[i].begin(), it.choices[i].end());
    q.max_tokens = 0;
    q.prompt_logprobs = 1;  // the top alternative tells whether the token was the greedy one
    q.prompt_logprobs_from = int64_t(it.context.size());
    q.on_prompt_logprobs = [&out, i](std::vector<TokenLogprob>&& lps) {
      for (const TokenLogprob& lp : lps) {
        out[i].loglik += lp.logprob;
        out[i].greedy = out[i].greedy && !lp.top.empty() && lp.top[0].first == lp.id;
      }
    };
    reqs.push_back(std::move(q));
  }
  // Submitted together (they run side by side), waited for together.
  std::mutex mu;
  std::condition_variable cv;
  size_t left = reqs.size();
  std::string error;
  for (Request& q : reqs)
    q.on_done = [&](const Result& res) {
      std::lock_guard<std::mutex> lk(mu);
      if (res.reason == FinishReason::kError && error.empty()) error = res.error;
      if (--left == 0) cv.notify_all();
    };
  RG_CHECK(engine.Submit(std::move(reqs)) == Engine::Admission::kAccepted, "score: the engine refused the choices");
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return left == 0; });
  RG_CHECK(error.empty(), "score: ", error);
  return out;
}

void RunScore(const ScoreArgs& a) {
  RG_CHECK(!std::filesystem::is_directory(a.tasks), a.tasks, ": is a directory (give a JSONL file of tasks)");
  RG_CHECK(a.output.empty() || !SameFile(a.output, a.tasks), "--output ", a.output,
           " is the tasks file: it would overwrite the tasks");
  ThreadPool pool(ResolveThreads(a.m.threads));
  auto weights = LoadModel(a.m, pool, a.quiet ? LoadNotes::kNone : LoadNotes::kProgress);
  const Config& c = weights->config;
  auto tok = LoadTokenizerFor(a.m.model, a.m.tokenizer, /*required=*/false);

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

  EngineOptions opt;
  opt.kernels = a.m.kernels();
  opt.parallel = a.parallel;
  opt.max_queue = 1 << 16;
  opt.cache_bytes = size_t(512) << 20;  // the contexts (and few-shot prefixes shared between items)
  Engine engine(weights, pool, opt);
  std::string per_item;  // --output, written at the end
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
    const std::vector<ChoiceScore> sc = ScoreItem(engine, it);
    std::vector<double> lls;
    std::vector<bool> greedy;
    for (const ChoiceScore& x : sc) {
      lls.push_back(x.loglik);
      greedy.push_back(x.greedy);
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
    if (!a.output.empty()) {
      json r = {{"line", li + 1}, {"loglikelihoods", lls}, {"is_greedy", greedy}, {"gold", it.gold},
                {"pred", pred}, {"pred_norm", pred_norm}};
      per_item += r.dump() + "\n";
    }
    if (progress) progress->Add(1);
  }
  if (progress) progress->Done();
  RG_CHECK(n > 0, a.tasks, ": no tasks (expected JSON Lines {\"context\", \"choices\", \"gold\"})");
  if (!a.output.empty()) WriteFileAtomic(a.output, per_item);
  const double acc = double(correct) / double(n), acc_norm = double(correct_norm) / double(n);
  if (a.json_out) {
    json r = {{"tasks", a.tasks}, {"n", n}, {"acc", acc}, {"acc_stderr", Stderr(acc, n)}, {"acc_norm", acc_norm},
              {"acc_norm_stderr", Stderr(acc_norm, n)}, {"mean_gold_loglikelihood", total_ll / double(n)}};
    WriteStdout(r.dump(2) + "\n");
  } else {
    WriteStdout(StrCat(a.tasks, ": ", n, " items | acc ", Fixed4(acc), " ± ", Fixed4(Stderr(acc, n)), " | acc_norm ",
                       Fixed4(acc_norm), " ± ", Fixed4(Stderr(acc_norm, n)), "\n"));
  }
  FlushStdout();
}

}  // namespace

void RegisterScore(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* cmd = app.add_subcommand("score", "Multiple-choice accuracy by log-likelihood (lm-evaluation-harness style)");
  AddModelFlags(cmd, &a->m);
  cmd->add_option("--tasks", a->tasks, "JSONL: {\"context\", \"choices\", \"gold\"} per line")->required()->check(NonEmpty);
  cmd->add_option("--output,-o", a->output, "Write per-item log-likelihoods here (JSONL)");
  cmd->add_option("--limit", a->limit, "Score only the first N items")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_flag("--json", a->json_out, "Print the summary as JSON");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
  cmd->add_option("--parallel", a->parallel, "Choices scored side by side")->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([a] { RunScore(*a); });
}

}  // namespace rg::cli
