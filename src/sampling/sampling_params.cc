#include "sampling/sampling_params.h"

#include <cmath>

#include "core/error.h"

namespace rg {

namespace {

// Written so that NaN fails every check (comparisons with NaN are false).
void CheckRange(const char* field, float v, float lo, bool lo_open, float hi, const char* range) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok) Fail("sampling: ", field, " must be in ", range, ", got ", v);
}

}  // namespace

void SamplingParams::Validate() const {
  CheckRange("temperature", temperature, 0.0f, false, 100.0f, "[0, 100] (0 = greedy)");
  if (top_k < 0) Fail("sampling: top_k must be >= 0 (0 = off), got ", top_k);
  CheckRange("top_p", top_p, 0.0f, true, 1.0f, "(0, 1] (1 = off)");
  CheckRange("min_p", min_p, 0.0f, false, 1.0f, "[0, 1] (0 = off)");
  CheckRange("repeat_penalty", repeat_penalty, 0.0f, true, 100.0f, "(0, 100] (1 = off)");
  if (repeat_last_n < 0 || repeat_last_n > (1 << 20)) {
    Fail("sampling: repeat_last_n must be in [0, 1048576] (0 = off), got ", repeat_last_n);
  }
  CheckRange("presence_penalty", presence_penalty, -100.0f, false, 100.0f, "[-100, 100] (0 = off)");
  CheckRange("frequency_penalty", frequency_penalty, -100.0f, false, 100.0f,
             "[-100, 100] (0 = off)");
}

}  // namespace rg
