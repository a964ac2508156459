// Helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/threads.h"
#include "model/weights.h"
#include "ops/kernel_context.h"

namespace rg::cli {

// A check for path flags: an empty value is refused at parse time (`-m ""`
// would otherwise read /config.json).
extern const CLI::Validator NonEmpty;

// --model/-m, --threads/-t and --tokenizer: registered once here for every
// command that loads a model. --tokenizer none: no tokenizer (token ids only).
// --precision exact|fast too: how BF16-weight products compute.
struct ModelFlags {
  std::string model, tokenizer, precision = "exact";
  int threads = 0;
  KernelOptions kernels() const;  // from --precision
};
void AddModelFlags(CLI::App* cmd, ModelFlags* f, bool with_tokenizer = true);

// Thrown to end a command with this exit status and no error message
// (e.g. 130 after Ctrl-C, once the stats are printed).
struct ExitCode {
  int status;
};

// Threads to use: the flag if > 0, else the machine's cores.
int ResolveThreads(int flag);

// Loads a model directory and reports what it loaded on stderr unless quiet.
// A load that takes over a second shows a progress bar on stderr unless
// show_progress is false (the commands' -q).
std::shared_ptr<const Weights> LoadModel(const std::string& dir, ThreadPool& pool, bool quiet,
                                         bool show_progress = true);

// RG_MMAP=1: leave the weights in the file mapping (zero-copy, fastest start)
// instead of copying them into huge pages (fastest decode).
bool MmapOnlyRequested();

// "2,17,5" -> {2, 17, 5}; rg::Error naming `field` for anything else.
std::vector<int32_t> ParseIdList(const std::string& text, const std::string& field);

// stdout, checked: a failed write (a full disk, /dev/full, a closed pipe)
// throws rg::Error instead of being lost. Flush at the end.
void WriteStdout(std::string_view s);
void FlushStdout();

// Peak resident set size of this process, bytes (from /proc/self/status VmHWM).
size_t PeakRssBytes();

}  // namespace rg::cli
