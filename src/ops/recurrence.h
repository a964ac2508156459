// One time step of a gated diagonal linear recurrence over n channels (the
// RG-LRU's), vectorized at the active ISA level:
//   log_a = c[i] * ga[i];   a = exp(log_a)
//   h[i]  = a * h[i] + sqrt(1 - exp(2 log_a)) * (x[i] * gx[i])
//   reset (first position of a sequence): h[i] = x[i] * gx[i]
//   x[i]  = h[i]      (in place: x becomes the step's output)
// h carries f32 across steps.
#pragma once

#include <cstdint>

namespace rg {

void GatedRecurrenceStep(const float* c, const float* ga, const float* gx, float* x, float* h, int64_t n,
                         bool reset);

// The oracle: the same with std::exp / std::sqrt.
void GatedRecurrenceStepReference(const float* c, const float* ga, const float* gx, float* x, float* h,
                                  int64_t n, bool reset);

}  // namespace rg
