// Dot products and scaled adds over f32 vectors, SIMD at the active ISA level
// (ops/cpu_features.h), with the scalar loops as the oracle. Used where the
// compiler cannot vectorize a float reduction by itself (attention).
#pragma once

#include <cstdint>

namespace rg {

float Dot(const float* a, const float* b, int64_t n);       // sum a[i] * b[i]
void Axpy(float alpha, const float* x, float* y, int64_t n);  // y[i] += alpha * x[i]

float DotScalar(const float* a, const float* b, int64_t n);
void AxpyScalar(float alpha, const float* x, float* y, int64_t n);

}  // namespace rg
