#include "ops/recurrence.h"

#include <cmath>

#include "ops/cpu_features.h"

namespace rg {
namespace {

// Written once, compiled per ISA (as ops/activations.cc); __restrict lets the
// compiler vectorize without alias checks. The FMA levels fuse b * x with the
// add, explicitly (left to the compiler it may fuse a * h instead).
#define RG_RECURRENCE_LOOP(NS, TARGET)                                                   \
  namespace NS {                                                                         \
  constexpr bool kFma = sizeof(#TARGET) > 1; /* every level but the baseline */          \
  TARGET void Step(const float* __restrict a, const float* __restrict b,                 \
                   const float* __restrict x, float* __restrict h, float* __restrict y,  \
                   int64_t n) {                                                          \
    for (int64_t i = 0; i < n; ++i) {                                                    \
      const float ah = a[i] * h[i];                                                      \
      const float v = kFma ? std::fma(b[i], x[i], ah) : ah + b[i] * x[i];                \
      h[i] = v;                                                                          \
      y[i] = v;                                                                          \
    }                                                                                    \
  }                                                                                      \
  }  // namespace NS

RG_FOR_EACH_ISA(RG_RECURRENCE_LOOP)
#undef RG_RECURRENCE_LOOP

}  // namespace

void DiagonalRecurrenceStep(const float* a, const float* b, const float* x, float* h, float* y, int64_t n) {
  PickIsa(scalar::Step, avx2::Step, avx512::Step)(a, b, x, h, y, n);
}

void DiagonalRecurrenceStepReference(const float* a, const float* b, const float* x, float* h, float* y,
                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float ah = a[i] * h[i], bx = b[i] * x[i];
    h[i] = ah + bx;
    y[i] = h[i];
  }
}

}  // namespace rg
