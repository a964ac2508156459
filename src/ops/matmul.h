// Products of a weight matrix with activations, in float32 accumulation.
//   MatMul: y[t, r] = sum_c W[r, c] * x[t, c] (+ bias[r]),  x [T, cols], y [T, rows]
// T = 1 is the decode matrix-vector case. Rows are split across the pool.
// The scalar versions (ops/matmul_scalar.cc) are the test oracle for every
// SIMD/quantized kernel.
#pragma once

#include <cstdint>
#include <span>

#include "core/threads.h"
#include "ops/weight_matrix.h"

namespace rg {

// How BF16-weight products are computed (process-wide; default kExact).
//   kExact: weights widened to f32, f32 products and sums (exact up to the
//           summation order).
//   kFast:  for T >= 12 (prefill, large batches), activations are rounded to
//           bf16 (nearest even) and the CPU's bf16 dot product (AVX512_BF16
//           vdpbf16ps) is used: about 1.8x the exact throughput when compute
//           bound; error <= 2^-9 * sum|W x| plus f32 rounding. Smaller T
//           (bound by the weight stream) and CPUs without AVX512_BF16 stay
//           exact.
// F32 weights are always exact.
enum class MatMulPrecision { kExact, kFast };
void SetMatMulPrecision(MatMulPrecision p);
MatMulPrecision GetMatMulPrecision();

// Weight formats F32 and BF16 run SIMD kernels chosen once per process (see
// ops/cpu_features.h); Q8 / Q4 go to MatMulQuantized (ops/quant_matmul.h).
// Pointers need no alignment. No allocation in steady state (per-thread
// scratch buffers are created by the first call that needs them and reused).
void MatMul(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
            ThreadPool& pool);

// Several products of the same x (an MLP's gate and up; q, k and v): for
// Q8/Q4 matrices of one format and width, x is quantized once and all rows
// go to the pool in one hand-off; otherwise one MatMul each. Equal to
// separate MatMul calls.
void MatMulShared(std::span<const MatMulTarget> targets, const float* x, int64_t T, ThreadPool& pool);

// Block-diagonal product with H square F32 blocks (the RG-LRU gates):
//   y[t, h*b + j] = sum_i W[h, j, i] * x[t, h*b + i] + bias[h*b + j]
// w [H, b, b], x and y [T, H*b], bias [H*b] or null. x_heads and y_heads are
// caller scratch of T*H*b floats each (the heads gathered contiguously).
// Whole heads are split across the pool: one hand-off for all H products.
void BlockDiagMatMul(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                     const float* bias, float* x_heads, float* y_heads, ThreadPool& pool);

// The reference implementation: plain loops, one thread.
void MatMulScalar(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias);

// out[c] = W[r, c] as float (embedding lookup).
void ReadRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace rg
