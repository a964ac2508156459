// The llama.cpp-style sampling and stopping flags shared by generate and chat.
#pragma once

#include <CLI/CLI.hpp>

#include "sampling/sampling_params.h"

namespace rg::cli {

struct SamplingFlags {
  SamplingParams params;
  CLI::Option* seed = nullptr;  // --seed; not given: a random seed (Resolve)
};

void AddSamplingFlags(CLI::App* cmd, SamplingFlags* f);

// The parameters to run with (validated: rg::Error): without --seed, a
// random seed, so two runs at temperature > 0 differ.
SamplingParams ResolveSampling(const SamplingFlags& f);

// "seed: N" on stderr when the seed was random and matters (temperature > 0),
// as llama.cpp does, so that a run can be repeated. Call once the run starts.
void NoteRandomSeed(const SamplingFlags& f, const SamplingParams& p);

}  // namespace rg::cli
