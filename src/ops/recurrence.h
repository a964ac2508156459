// One time step of a diagonal linear recurrence over n channels, vectorized
// at the active ISA level:
//   h[i] = a[i] * h[i] + b[i] * x[i];   y[i] = h[i]
// (decay a, input gain b). h carries f32 across steps. The arrays must not
// overlap. The RG-LRU (model/rg_lru.h) computes its a_t, gain and gated input
// and steps with this. Where the ISA has FMA, h = fma(b, x, a * h): a * h is
// rounded, b * x is not.
#pragma once

#include <cstdint>

namespace rg {

void DiagonalRecurrenceStep(const float* a, const float* b, const float* x, float* h, float* y, int64_t n);

// The oracle: the same with every product rounded.
void DiagonalRecurrenceStepReference(const float* a, const float* b, const float* x, float* h, float* y,
                                     int64_t n);

}  // namespace rg
