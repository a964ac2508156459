#include "cli/llama_flags.h"

#include "core/error.h"

namespace rg::cli {

namespace {

struct LlamaFlag {
  const char* flag;
  const char* command;      // the subcommand where `ours` applies; null: every one
  const char* ours;         // the rgemma flag, or null: refused
  const char* why;          // for a refusal
};

constexpr const char* kCpu = "rgemma runs on the CPU";
constexpr LlamaFlag kFlags[] = {
    {"-np", "serve", "--parallel", "only rgemma serve runs sequences in parallel: --parallel"},
    {"-sys", "chat", "--system", "only rgemma chat takes a system prompt: --system"},
    {"-cnv", nullptr, nullptr, "use rgemma chat for a conversation"},
    {"-tb", nullptr, nullptr, "one thread count covers prompt and generation: -t/--threads"},
    {"-hf", nullptr, nullptr, "download the model directory first and give it with -m"},
    {"-ngl", nullptr, nullptr, kCpu},
    {"--n-gpu-layers", nullptr, nullptr, kCpu},
    {"--gpu-layers", nullptr, nullptr, kCpu},
    {"-ngld", nullptr, nullptr, kCpu},
    {"--n-gpu-layers-draft", nullptr, nullptr, kCpu},
    {"-sm", nullptr, nullptr, kCpu},
    {"--split-mode", nullptr, nullptr, kCpu},
    {"-mg", nullptr, nullptr, kCpu},
    {"--main-gpu", nullptr, nullptr, kCpu},
    {"-ts", nullptr, nullptr, kCpu},
    {"--tensor-split", nullptr, nullptr, kCpu},
    {"-dev", nullptr, nullptr, kCpu},
    {"--device", nullptr, nullptr, kCpu},
};

}  // namespace

std::vector<std::string> RewriteLlamaFlags(std::vector<std::string> args) {
  const std::string command = args.empty() ? "" : args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;  // the rest are values
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    for (const LlamaFlag& f : kFlags) {
      if (name != f.flag) continue;
      if (f.ours && (!f.command || command == f.command)) {
        a = f.ours + (eq == std::string::npos ? "" : a.substr(eq));
        break;
      }
      Fail("unknown option ", name, " (", f.why, ")");
    }
  }
  return args;
}

}  // namespace rg::cli
