// Products of a weight matrix with activations, in float32 accumulation.
//   MatMul: y[t, r] = sum_c W[r, c] * x[t, c] (+ bias[r]),  x [T, cols], y [T, rows]
// T = 1 is the decode matrix-vector case. Rows are split across the pool.
// The scalar versions (ops/matmul_scalar.cc) are the test oracle for every
// SIMD/quantized kernel.
#pragma once

#include <cstdint>
#include <span>

#include "ops/kernel_context.h"
#include "ops/weight_matrix.h"

namespace rg {

// Weight formats F32 and BF16 run the SIMD kernels of ctx.isa() chosen by
// ctx's options; quantized formats go to MatMulQuantized (ops/quant_matmul.h).
// Rows are split across ctx.pool(). Pointers need no alignment. No
// allocation within the sizes ctx was reserved for (work memory is ctx's).
void MatMul(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
            KernelContext& ctx);

// Several products of the same x (an MLP's gate and up; q, k and v): for
// Q8/Q4 matrices of one format and width, x is quantized once and all rows
// go to the pool in one hand-off; otherwise one MatMul each. Equal to
// separate MatMul calls.
void MatMulShared(std::span<const MatMulTarget> targets, const float* x, int64_t T, KernelContext& ctx);

// The reference implementation: plain loops, one thread.
void MatMulScalar(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias);

// out[c] = W[r, c] as float (embedding lookup).
void ReadRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace rg
