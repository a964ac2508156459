#include "cli/common.h"
#include "cli/precision_flag.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "cli/progress.h"
#include "core/error.h"

namespace rg::cli {

const CLI::Validator NonEmpty(
    [](std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); }, "NONEMPTY");

void AddModelFlags(CLI::App* cmd, ModelFlags* f, bool with_tokenizer) {
  cmd->add_option("--model,-m", f->model, "Model directory (config.json + safetensors)")->required()->check(NonEmpty);
  if (with_tokenizer)
    cmd->add_option("--tokenizer", f->tokenizer,
                    "tokenizer.model (default: the model directory's; 'none': no tokenizer, token ids only)")
        ->check(NonEmpty);
  cmd->add_option("--threads,-t", f->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  AddPrecisionFlag(cmd, &f->precision);
}

KernelOptions ModelFlags::kernels() const { return KernelOptionsFor(precision); }

int ResolveThreads(int flag) {
  if (flag > 0) return flag;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

std::shared_ptr<const Weights> LoadModel(const std::string& dir, ThreadPool& pool, bool quiet,
                                         bool show_progress) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions opt;
  opt.pool = &pool;
  opt.copy_to_huge_pages = !MmapOnlyRequested();
  Progress progress("loading " + dir, 1, /*show_after_s=*/1.0);
  if (show_progress) opt.progress = [&](size_t done, size_t total) { progress.Set(done, total); };
  auto w = Weights::Load(dir, opt);
  progress.Done();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet)
    std::fprintf(stderr, "loaded %s: %lld layers, width %lld, vocab %lld, %.2f GB of matrices, %.2f s\n",
                 dir.c_str(), (long long)w->config.num_layers(), (long long)w->config.width,
                 (long long)w->config.vocab_size, double(w->matrix_bytes_per_token()) / 1e9, s);
  return w;
}

bool MmapOnlyRequested() {
  const char* v = std::getenv("RG_MMAP");
  return v && *v && std::string(v) != "0";
}

std::vector<int32_t> ParseIdList(const std::string& text, const std::string& field) {
  std::vector<int32_t> ids;
  size_t i = 0;
  RG_CHECK(!text.empty(), field, ": expected a comma-separated list of token ids, got an empty string");
  while (i <= text.size()) {
    const size_t comma = text.find(',', i);
    const std::string item = text.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    RG_CHECK(!item.empty() && end && *end == '\0' && errno == 0 && v >= 0 && v <= INT32_MAX, field,
             ": '", item, "' is not a token id (expected a non-negative integer)");
    ids.push_back(int32_t(v));
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return ids;
}

void WriteStdout(std::string_view s) {
  if (s.empty()) return;
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::ferror(stdout))
    Fail("stdout: write failed: ", std::strerror(errno));
}

void FlushStdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) Fail("stdout: write failed: ", std::strerror(errno));
}

size_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return size_t(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
  return 0;
}

}  // namespace rg::cli
