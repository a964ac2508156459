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

// Block-diagonal product with H square F32 blocks (the RG-LRU gates):
//   y[t, h*b + j] = sum_i W[h, j, i] * x[t, h*b + i] + bias[h*b + j]
// w [H, b, b], x and y [T, H*b], bias [H*b] or null. x_heads and y_heads are
// caller scratch of T*H*b floats each (the heads gathered contiguously).
// Whole heads are split across the pool: one hand-off for all H products.
void BlockDiagMatMul(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                     const float* bias, float* x_heads, float* y_heads, KernelContext& ctx);

// The reference implementation: plain loops, one thread.
void MatMulScalar(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias);

// out[c] = W[r, c] as float (embedding lookup).
void ReadRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace rg
