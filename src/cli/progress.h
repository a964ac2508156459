// A one-line progress bar on stderr (redrawn in place on a terminal, printed
// every 10% otherwise). With show_after > 0 nothing shows unless the work
// takes longer than that (a quick load stays silent).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace rg::cli {

class Progress {
 public:
  // Nothing is drawn before show_after_s seconds (short jobs stay quiet).
  Progress(std::string label, size_t total, double show_after_s = 0);
  void Add(size_t n);
  void Set(size_t done, size_t total);
  void Done();

 private:
  void Draw(bool force);
  std::string label_;
  size_t total_, done_ = 0;
  double show_after_s_;
  bool shown_ = false;
  int last_decile_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace rg::cli
