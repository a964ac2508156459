// Products of a weight matrix with activations, in float32 accumulation.
//   MatMul: y[t, r] = sum_c W[r, c] * x[t, c] (+ bias[r]),  x [T, cols], y [T, rows]
// T = 1 is the decode matrix-vector case. Rows are split across the pool.
// The scalar versions (ops/matmul_scalar.cc) are the test oracle for every
// SIMD/quantized kernel.
#pragma once

#include <cstdint>

#include "core/threads.h"
#include "ops/weight_matrix.h"

namespace rg {

// How BF16-weight products are computed (process-wide; default kExact).
//   kExact: weights widened to f32, f32 products and sums (exact up to the
//           summation order).
//   kFast:  for prefill-sized T, activations are rounded to bf16 and the CPU's
//           bf16 dot product (AVX512_BF16 vdpbf16ps) is used; relative error
//           about 2^-9 * sum |W x|. Without AVX512_BF16 this is kExact.
// F32 weights are always exact.
enum class MatMulPrecision { kExact, kFast };
void SetMatMulPrecision(MatMulPrecision p);
MatMulPrecision GetMatMulPrecision();

// Weight formats F32 and BF16 run SIMD kernels chosen at run time (see
// ops/cpu_features.h); Q8 / Q4 go to MatMulQuantized. Pointers need no
// alignment. No allocation in steady state (per-thread packing buffers are
// created by the first prefill-sized call on each thread).
void MatMul(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
            ThreadPool& pool);

// The reference implementation: plain loops, one thread.
void MatMulScalar(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias);

// out[c] = W[r, c] as float (embedding lookup).
void ReadRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace rg
