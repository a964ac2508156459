#include "ops/elementwise.h"

#include <algorithm>

namespace rg {

void RmsNorm(const float* x, const float* scale, int64_t n, float eps, float* out) {
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
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
