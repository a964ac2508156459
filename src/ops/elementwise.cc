#include "ops/elementwise.h"

#include <algorithm>

namespace rg {

// The sum of squares in 16 interleaved partial sums (lane l takes the x[i]
// with i % 16 == l, in order), then the partials pairwise: one fixed order,
// so the same bits at every ISA and in prefill and decode, and 16
// independent chains the compiler keeps in vectors instead of one chain of
// n dependent adds (2,560 of them per row were ~1% of int8 prefill).
float SumOfSquares(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += x[i + l] * x[i + l];
  for (int l = 0; i + l < n; ++l) part[l] += x[i + l] * x[i + l];
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0];
}

void RmsNorm(const float* x, const float* scale, int64_t n, float eps, float* out) {
  const float ss = SumOfSquares(x, n);
  const float inv = 1.f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * scale[i];
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void RopeSinCos(int64_t pos, int64_t rope_dim, float theta, float* cos_out, float* sin_out) {
  // As the reference: timescale = theta ** (2i / R) in f32, angle = pos / timescale,
  // sin and cos of the f32 angle.
  const int64_t half = rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = float(2 * i) / float(rope_dim);
    const float inv_timescale = 1.f / std::pow(theta, exponent);
    const float angle = float(pos) * inv_timescale;
    cos_out[i] = float(std::cos(double(angle)));
    sin_out[i] = float(std::sin(double(angle)));
  }
}

void RopeApply(float* x, int64_t rope_dim, const float* cos, const float* sin) {
  const int64_t half = rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float first = x[i], second = x[half + i];
    x[i] = first * cos[i] - second * sin[i];
    x[half + i] = second * cos[i] + first * sin[i];
  }
}

}  // namespace rg
