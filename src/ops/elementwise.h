// Elementwise and row-wise kernels on f32 activations. Plain loops the
// compiler vectorizes; they know nothing of the model.
#pragma once

#include <cmath>
#include <cstdint>

namespace rg {

// sum of x[i]^2 over [0, n), in a fixed order (16 interleaved partial sums).
float SumOfSquares(const float* x, int64_t n);

// out = x * rsqrt(mean(x^2) + eps) * scale   (scale already holds 1 + w)
void RmsNorm(const float* x, const float* scale, int64_t n, float eps, float* out);

// GELU, sigmoid, soft cap and softmax: ops/activations.h.

// x[i] += y[i]
void AddInPlace(float* x, const float* y, int64_t n);

// Rotary embedding, NeoX split-half layout, on the first rope_dim entries of x:
//   first = x[:R/2], second = x[R/2:R]
//   first' = first*cos - second*sin, second' = second*cos + first*sin
// cos/sin: [R/2] for the token's position (RopeSinCos).
void RopeSinCos(int64_t pos, int64_t rope_dim, float theta, float* cos_out, float* sin_out);
void RopeApply(float* x, int64_t rope_dim, const float* cos, const float* sin);

}  // namespace rg
