#include "cli/sampling_flags.h"

#include <cstdio>
#include <random>

namespace rg::cli {

void AddSamplingFlags(CLI::App* cmd, SamplingFlags* f) {
  SamplingParams* p = &f->params;
  cmd->add_option("--temperature,--temp", p->temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", p->top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  cmd->add_option("--top-p", p->top_p, "Nucleus sampling; 1 = off")->capture_default_str();
  cmd->add_option("--min-p", p->min_p, "Drop tokens below min-p x the top probability; 0 = off")->capture_default_str();
  cmd->add_option("--repeat-penalty", p->repeat_penalty, "Penalise recent tokens; 1 = off")->capture_default_str();
  cmd->add_option("--repeat-last-n", p->repeat_last_n, "Tokens the penalties look back over")->capture_default_str();
  cmd->add_option("--presence-penalty", p->presence_penalty, "Subtract once per seen token; 0 = off")->capture_default_str();
  cmd->add_option("--frequency-penalty", p->frequency_penalty, "Subtract per occurrence; 0 = off")->capture_default_str();
  f->seed = cmd->add_option("--seed,-s", p->seed, "Random seed: the same seed gives the same output (default: random, "
                                                  "printed on stderr)");
}

SamplingParams ResolveSampling(const SamplingFlags& f) {
  SamplingParams p = f.params;
  p.Validate();
  if (!f.seed || f.seed->count() == 0) p.seed = std::random_device{}();
  return p;
}

void NoteRandomSeed(const SamplingFlags& f, const SamplingParams& p) {
  if ((f.seed && f.seed->count() > 0) || p.temperature == 0) return;
  std::fprintf(stderr, "seed: %llu (--seed %llu repeats this run)\n", (unsigned long long)p.seed,
               (unsigned long long)p.seed);
}

}  // namespace rg::cli
