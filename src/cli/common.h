// Helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/threads.h"
#include "model/weights.h"

namespace rg::cli {

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

// Peak resident set size of this process, bytes (from /proc/self/status VmHWM).
size_t PeakRssBytes();

}  // namespace rg::cli
