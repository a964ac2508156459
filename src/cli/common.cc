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
#include "ops/cpu_features.h"

namespace rg::cli {

const CLI::Validator NonEmpty(
    [](std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); }, "NONEMPTY");

CLI::Option* AddModelDirFlag(CLI::App* cmd, std::string* dir, const std::string& help) {
  return cmd->add_option("--model,-m", *dir, help)->check(NonEmpty);
}

CLI::Option* AddThreadsFlag(CLI::App* cmd, int* threads) {
  return cmd->add_option("--threads,-t", *threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
}

void AddModelFlags(CLI::App* cmd, ModelFlags* f, bool with_tokenizer) {
  AddModelDirFlag(cmd, &f->model, "Model directory (config.json + safetensors)")->required();
  if (with_tokenizer)
    cmd->add_option("--tokenizer", f->tokenizer,
                    "tokenizer.model (default: the model directory's; 'none': no tokenizer, token ids only)")
        ->check(NonEmpty);
  AddThreadsFlag(cmd, &f->threads);
  cmd->add_flag_callback("--mmap", [f] { f->mmap = true; },
                         "Leave the weights in the file mapping: fastest start (default: copied into huge pages, "
                         "fastest decode; also RG_MMAP=1)");
  cmd->add_flag_callback("--no-mmap", [f] { f->mmap = false; }, "Copy the weights into memory (the default)");
  cmd->add_flag("--verbose,-v", f->verbose, "Say what was loaded and how it runs (threads, SIMD, weight format)");
  cmd->add_option("--ctx-size,-c", f->ctx_size,
                  "Accepted for llama.cpp habits; has no effect: RecurrentGemma has no context limit")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  AddPrecisionFlag(cmd, &f->precision);
}

KernelOptions ModelFlags::kernels() const { return KernelOptionsFor(precision); }

namespace {

// Seconds a load runs before its progress shows (RG_LOAD_PROGRESS_AFTER
// overrides the 1 s, for tests).
double LoadProgressDelay() {
  const char* v = std::getenv("RG_LOAD_PROGRESS_AFTER");
  return v && *v ? std::atof(v) : 1.0;
}

}  // namespace

int ResolveThreads(int flag) {
  if (flag > 0) return flag;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

std::string WeightFormatSummary(const Weights& w) {
  const WeightFormat layers = w.layers.empty() ? w.embed.format : w.layers[0].mlp.gate.format;
  std::string s = WeightFormatName(layers);
  if (w.embed.format != layers) s += StrCat(" (embedding ", WeightFormatName(w.embed.format), ")");
  return s;
}

std::shared_ptr<const Weights> LoadModel(const ModelFlags& f, ThreadPool& pool, LoadNotes notes, double* seconds) {
  if (f.ctx_size >= 0)
    std::fprintf(stderr, "note: -c/--ctx-size has no effect: RecurrentGemma has no context limit (its state has a "
                         "fixed size: a recurrence plus a sliding attention window), so any length runs\n");
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions opt;
  opt.pool = &pool;
  opt.copy_to_huge_pages = !f.mmap.value_or(MmapOnlyRequested());
  std::unique_ptr<Progress> progress;
  if (notes != LoadNotes::kNone)
    opt.progress = [&](size_t done, size_t total) {
      if (!progress) progress = std::make_unique<Progress>("loading " + f.model, total, LoadProgressDelay());
      progress->Set(done, total);
    };
  auto w = Weights::Load(f.model, opt);
  if (progress) progress->Done();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (seconds) *seconds = s;
  if (notes == LoadNotes::kAll || f.verbose)
    std::fprintf(stderr, "loaded %s: %lld layers, width %lld, vocab %lld, %s, %.2f GB of matrices, %.2f s\n",
                 f.model.c_str(), (long long)w->config.num_layers(), (long long)w->config.width,
                 (long long)w->config.vocab_size, WeightFormatSummary(*w).c_str(),
                 double(w->matrix_bytes_per_token()) / 1e9, s);
  if (f.verbose)
    std::fprintf(stderr, "running on %d threads, SIMD %s%s, weights %s\n", pool.size(), IsaName(ActiveIsa()),
                 ActiveHasAvx512Bf16() ? " (+bf16 dot products)" : "",
                 opt.copy_to_huge_pages ? "copied into huge pages" : "in the file mapping (--mmap)");
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

std::string ReadStdinText(size_t max_bytes, const char* what) {
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const size_t n = std::fread(buf, 1, sizeof buf, stdin);
    text.append(buf, n);
    RG_CHECK(text.size() <= max_bytes, "stdin: the ", what, " is more than the limit of ", max_bytes,
             " bytes (raise it with --max-prompt-bytes)");
    if (n < sizeof buf) break;
  }
  RG_CHECK(!std::ferror(stdin), "stdin: cannot read the ", what, ": ", std::strerror(errno));
  return text;
}

size_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return size_t(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
  return 0;
}

}  // namespace rg::cli
