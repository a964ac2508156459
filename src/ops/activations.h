// Transcendental activations over f32 arrays (GELU, sigmoid, tanh soft cap,
// softmax), vectorized at the active ISA level (ops/cpu_features.h).
//
// libm's tanhf/expf are scalar calls: in prefill they took a fifth of the
// time (102 M GELUs per 512-token 2B prompt). Here exp is a branch-free
// polynomial (below) that the compiler vectorizes; tanh and sigmoid are
// built on it. The *Reference functions are the std:: definitions and stay
// as the test oracle; the fast forms are within a few float ulps of them
// (tolerances at the checks in tests/unit/activations_test.cc).
#pragma once

#include <bit>
#include <cstdint>

namespace rg {

// exp(x) for f32, relative error < 2 ulp on [-87, 88]; clamps outside (so
// exp(-inf) = 2^-126 ~ 1e-38 rather than 0, exp(+inf) = 2^127 * ~1.7).
// NaN stays NaN. Cephes' expf polynomial, with round-to-nearest by the
// 1.5 * 2^23 trick so no libm call is left in the loop.
inline float ExpFast(float x) {
  x = x < -87.3f ? -87.3f : x;  // NaN compares false: passes through
  x = x > 88.3f ? 88.3f : x;
  constexpr float kLog2e = 1.44269504088896341f, kRound = 12582912.f;  // 1.5 * 2^23
  const float k = (x * kLog2e + kRound) - kRound;  // round(x / ln 2)
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // x - k ln2, ln2 split in two
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t n = int32_t(k);
  return p * std::bit_cast<float>((n + 127) << 23);
}

// tanh(x) = 1 - 2 / (1 + exp(2x)); absolute error ~1e-7 (cancellation near 0).
inline float TanhFast(float x) { return 1.f - 2.f / (1.f + ExpFast(2.f * x)); }

inline float SigmoidFast(float x) { return 1.f / (1.f + ExpFast(-x)); }

// GELU, tanh approximation (torch approximate="tanh", jax.nn.gelu default).
inline float GeluTanhFast(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.f + TanhFast(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

// x[i] = gelu_tanh(x[i])
void GeluInPlace(float* x, int64_t n);
// gate[i] = gelu_tanh(gate[i]) * up[i]   (the gated MLP's elementwise step)
void GeluMul(float* gate, const float* up, int64_t n);
// x[i] = exp(x[i]) (ExpFast)
void ExpInPlace(float* x, int64_t n);
// x[i] = sigmoid(x[i])
void SigmoidInPlace(float* x, int64_t n);
// x[i] = cap * tanh(x[i] / cap); no-op when cap == 0.
void SoftCap(float* x, int64_t n, float cap);
// In-place softmax over n > 0 entries, with max subtraction.
void Softmax(float* x, int64_t n);

// The oracles: the same maths with std::tanh / std::exp, sequential sums.
float GeluTanhReference(float x);
void SoftCapReference(float* x, int64_t n, float cap);
void SoftmaxReference(float* x, int64_t n);

}  // namespace rg
