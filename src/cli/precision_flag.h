// --precision exact|fast, shared by the commands that run a model: how its
// BF16-weight products compute (MatMulPrecision, ops/kernel_context.h).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "ops/kernel_context.h"

namespace rg::cli {

// Registers --precision on cmd, writing "exact" (the default) or "fast".
void AddPrecisionFlag(CLI::App* cmd, std::string* precision);
// The kernel options for a --precision value.
KernelOptions KernelOptionsFor(const std::string& precision);

}  // namespace rg::cli
