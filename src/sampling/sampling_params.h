// User-facing sampling settings (llama.cpp conventions).
#pragma once

#include <cstdint>

namespace rg {

struct SamplingParams {
  float temperature = 0.8f;     // 0 = greedy (argmax); allowed [0, 100]
  int top_k = 40;               // 0 = off; allowed >= 0
  float top_p = 0.95f;          // 1 = off; allowed (0, 1]
  float min_p = 0.05f;          // 0 = off; allowed [0, 1]
  float repeat_penalty = 1.0f;  // 1 = off; allowed (0, 100]
  int repeat_last_n = 64;       // penalty window in tokens; 0 = off; allowed [0, 1048576]
  float presence_penalty = 0.0f;   // 0 = off; allowed [-100, 100]
  float frequency_penalty = 0.0f;  // 0 = off; allowed [-100, 100]
  uint64_t seed = 0;

  // Throws rg::Error naming the field, its allowed range and the bad value
  // for any absurd setting (negative temperature, top_p outside (0, 1],
  // NaN / infinity anywhere, ...).
  void Validate() const;

  // True if any of repeat / presence / frequency penalty is active.
  bool penalties_enabled() const {
    return repeat_last_n > 0 &&
           (repeat_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f);
  }
};

}  // namespace rg
