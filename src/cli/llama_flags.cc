#include "cli/llama_flags.h"

#include "core/error.h"

namespace rg::cli {

namespace {

struct LlamaFlag {
  const char* flag;
  const char* command;  // the subcommand where `ours` applies (null: every one)
  const char* ours;     // the rgemma flag, or null: refused
  const char* why;      // the reason given when refused
};

constexpr LlamaFlag kFlags[] = {
    {"-np", "serve", "--parallel", "only rgemma serve runs sequences in parallel: --parallel"},
    {"-sys", "chat", "--system", "only rgemma chat takes a system prompt: --system"},
    {"-cnv", nullptr, nullptr, "use rgemma chat for a conversation"},
    {"-tb", nullptr, nullptr, "one thread count covers prompt and generation: -t/--threads"},
    {"-hf", nullptr, nullptr, "download the model directory first and give it with -m"},
};

// llama.cpp's GPU offload flags: rgemma has no GPU to offload to.
constexpr const char* kGpuFlags[] = {"-ngl", "--n-gpu-layers", "--gpu-layers", "-ngld", "--n-gpu-layers-draft",
                                     "-sm",  "--split-mode",   "-mg",          "--main-gpu", "-ts",
                                     "--tensor-split", "-dev", "--device"};

}  // namespace

std::vector<std::string> RewriteLlamaFlags(std::vector<std::string> args) {
  const std::string command = args.empty() ? "" : args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;  // the rest are values
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    for (const char* gpu : kGpuFlags)
      if (name == gpu) Fail("unknown option ", name, " (rgemma runs on the CPU)");
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
