#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace rg::cli {

Progress::Progress(std::string label, size_t total, double show_after_seconds)
    : label_(std::move(label)), total_(total ? total : 1), tty_(isatty(2)), show_after_(show_after_seconds),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::Add(size_t n) {
  done_ += n;
  Draw(false);
}

void Progress::Draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double frac = double(done_) / double(total_);
  const double secs = std::chrono::duration<double>(now - start_).count();
  if (!shown_ && secs < show_after_) return;
  shown_ = true;
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30, filled = int(frac * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %5.1f%% %.1f s", label_.c_str(), filled,
                 "##############################", width - filled, "", 100 * frac, secs);
    std::fflush(stderr);
  } else {
    const int decile = int(frac * 10);
    if (decile == last_decile_ && !force) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %3d%% %.1f s\n", label_.c_str(), decile * 10, secs);
  }
}

void Progress::Done() {
  done_ = total_;
  Draw(true);
  if (tty_ && shown_) std::fprintf(stderr, "\n");
}

}  // namespace rg::cli
