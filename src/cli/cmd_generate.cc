// rgemma generate: continue a prompt.
//   contract: rgemma generate --model DIR --prompt-ids 2,17,5 --max-tokens N
//             --temperature 0 --ignore-eos --print-ids
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "generate/session.h"
#include "sampling/sampler.h"

namespace rg::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt_ids;
  int64_t max_tokens = 128;
  bool ignore_eos = false, print_ids = false;
  int threads = 0;
  SamplingParams sampling;
};

void RunGenerate(GenerateArgs a) {
  a.sampling.Validate();
  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, /*quiet=*/true);
  const Config& c = weights->config;
  RG_CHECK(!a.prompt_ids.empty(), "--prompt-ids: required (text prompts need a tokenizer)");
  std::vector<int32_t> prompt = ParseIdList(a.prompt_ids, "--prompt-ids");
  for (int32_t id : prompt)
    RG_CHECK(id < c.vocab_size, "--prompt-ids: token id ", id, " is outside the model's vocabulary [0, ",
             c.vocab_size, ")");

  Session session(weights, pool);
  Sampler sampler(a.sampling, int(c.vocab_size));
  for (int32_t id : prompt) sampler.Accept(id);
  const float* logits = session.Prefill(prompt);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < a.max_tokens; ++i) {
    const int32_t next = sampler.Sample(logits);
    sampler.Accept(next);
    out.push_back(next);
    if (!a.ignore_eos && next == c.eos_id) break;
    if (i + 1 < a.max_tokens) logits = session.Step(next);
  }
  if (a.print_ids) {
    for (size_t i = 0; i < out.size(); ++i) std::printf(i ? " %d" : "%d", out[i]);
    std::printf("\n");
  }
}

}  // namespace

void RegisterGenerate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt");
  cmd->add_option("--model,-m", a->model, "Model directory")->required();
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids (BOS included)");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Tokens to generate")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at end-of-sequence");
  cmd->add_flag("--print-ids", a->print_ids, "Print the generated ids on one line");
  cmd->add_option("--temperature,--temp", a->sampling.temperature, "0 = greedy");
  cmd->add_option("--top-k", a->sampling.top_k, "0 = off");
  cmd->add_option("--top-p", a->sampling.top_p, "1 = off");
  cmd->add_option("--min-p", a->sampling.min_p, "0 = off");
  cmd->add_option("--seed,-s", a->sampling.seed, "Random seed");
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->callback([a] { RunGenerate(*a); });
}

}  // namespace rg::cli
