// The llama.cpp-style sampling and stopping flags shared by generate and chat.
#pragma once

#include <CLI/CLI.hpp>

#include "sampling/sampling_params.h"

namespace rg::cli {

void AddSamplingFlags(CLI::App* cmd, SamplingParams* p);

}  // namespace rg::cli
