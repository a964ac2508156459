// Each rgemma subcommand registers its options on the CLI11 app and a callback
// that runs it. Errors are thrown as rg::Error and printed by main as one line.
#pragma once

#include <CLI/CLI.hpp>

namespace rg::cli {

void RegisterChat(CLI::App& app);
void RegisterForward(CLI::App& app);
void RegisterGenerate(CLI::App& app);
void RegisterInit(CLI::App& app);
void RegisterQuantize(CLI::App& app);
void RegisterBench(CLI::App& app);
void RegisterTokenize(CLI::App& app);
void RegisterServe(CLI::App& app);
void RegisterScore(CLI::App& app);
void RegisterPerplexity(CLI::App& app);

}  // namespace rg::cli
