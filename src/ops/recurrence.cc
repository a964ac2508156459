#include "ops/recurrence.h"

#include <cmath>

#include "ops/activations.h"
#include "ops/cpu_features.h"

namespace rg {
namespace {

// Written once, compiled per ISA (as ops/activations.cc); __restrict lets the
// compiler vectorize without alias checks (callers pass disjoint arrays).
#define RG_RECURRENCE_LOOP(NS, TARGET)                                                          \
  namespace NS {                                                                                \
  TARGET void Step(const float* __restrict c, const float* __restrict ga,                      \
                   const float* __restrict gx, float* __restrict x, float* __restrict h,        \
                   int64_t n, bool reset) {                                                     \
    if (reset) {                                                                                \
      for (int64_t i = 0; i < n; ++i) x[i] = h[i] = x[i] * gx[i];                               \
      return;                                                                                   \
    }                                                                                           \
    for (int64_t i = 0; i < n; ++i) {                                                           \
      const float log_a = c[i] * ga[i];                                                         \
      const float a = ExpFast(log_a), a_square = ExpFast(2.f * log_a);                          \
      const float v = a * h[i] + std::sqrt(1.f - a_square) * (x[i] * gx[i]);                   \
      h[i] = v;                                                                                 \
      x[i] = v;                                                                                 \
    }                                                                                           \
  }                                                                                             \
  }  // namespace NS

RG_FOR_EACH_ISA(RG_RECURRENCE_LOOP)
#undef RG_RECURRENCE_LOOP

}  // namespace

void GatedRecurrenceStep(const float* c, const float* ga, const float* gx, float* x, float* h, int64_t n,
                         bool reset) {
  PickIsa(scalar::Step, avx2::Step, avx512::Step)(c, ga, gx, x, h, n, reset);
}

void GatedRecurrenceStepReference(const float* c, const float* ga, const float* gx, float* x, float* h,
                                  int64_t n, bool reset) {
  for (int64_t i = 0; i < n; ++i) {
    const float log_a = c[i] * ga[i];
    const float a = std::exp(log_a), a_square = std::exp(2.f * log_a);
    const float multiplier = reset ? 1.f : std::sqrt(1.f - a_square);
    h[i] = (reset ? 0.f : a * h[i]) + (x[i] * gx[i]) * multiplier;
    x[i] = h[i];
  }
}

}  // namespace rg
