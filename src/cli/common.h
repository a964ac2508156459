// Helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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

// The flags of every command that loads a model, registered once here:
// --model/-m, --threads/-t, --tokenizer (none: token ids only), --mmap/--no-mmap,
// -v/--verbose, --precision exact|fast (how BF16-weight products compute), and
// llama.cpp's -c/--ctx-size (accepted, with a note: RecurrentGemma's state has
// a fixed size, so there is no context length to set).
struct ModelFlags {
  std::string model, tokenizer, precision = "exact";
  int threads = 0;
  KernelOptions kernels() const;  // from --precision
  std::optional<bool> mmap;  // unset: RG_MMAP (MmapOnlyRequested)
  int64_t ctx_size = -1;     // given: only the note
  bool verbose = false;      // the load line and what runs where (threads, ISA, weight format)
};
void AddModelFlags(CLI::App* cmd, ModelFlags* f, bool with_tokenizer = true);
// The flags that commands without ModelFlags share, spelled once:
// --model,-m DIR (help: what the directory is for) and --threads,-t N.
CLI::Option* AddModelDirFlag(CLI::App* cmd, std::string* dir, const std::string& help);
CLI::Option* AddThreadsFlag(CLI::App* cmd, int* threads);

// Thrown to end a command with this exit status and no error message
// (e.g. 130 after Ctrl-C, once the stats are printed).
struct ExitCode {
  int status;
};

// Threads to use: the flag if > 0, else the machine's cores.
int ResolveThreads(int flag);

// What LoadModel says on stderr: nothing; the progress of a load that takes
// over a second; or that plus the load line (what was loaded, how long it
// took). -v/--verbose adds the load line and how the model runs.
enum class LoadNotes { kNone, kProgress, kAll };

// Loads f.model; *seconds, if given, gets the load time.
std::shared_ptr<const Weights> LoadModel(const ModelFlags& f, ThreadPool& pool, LoadNotes notes,
                                         double* seconds = nullptr);

// RG_MMAP=1: leave the weights in the file mapping (zero-copy, fastest start)
// instead of copying them into huge pages (fastest decode). --mmap /
// --no-mmap override it.
bool MmapOnlyRequested();

// "bf16", or "q4 (embedding q8)" when the embedding / output head differ
// from the layers' matrices.
std::string WeightFormatSummary(const Weights& w);

// The text -f - reads: all of stdin, at most max_bytes (rg::Error naming `what`).
std::string ReadStdinText(size_t max_bytes, const char* what);

// "2,17,5" -> {2, 17, 5}; rg::Error naming `field` for anything else.
std::vector<int32_t> ParseIdList(const std::string& text, const std::string& field);

// stdout, checked: a failed write (a full disk, /dev/full, a closed pipe)
// throws rg::Error instead of being lost. Flush at the end.
void WriteStdout(std::string_view s);
void FlushStdout();

// Peak resident set size of this process, bytes (from /proc/self/status VmHWM).
size_t PeakRssBytes();

}  // namespace rg::cli
