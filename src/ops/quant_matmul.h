// Matrix products with quantized weights (Q8, Q4, Q8_256, Q4_256; layout in
// ops/quant.h):
//   y[t, r] = sum_c W[r, c] * x[t, c] (+ bias[r]),  x [T, cols], y [T, rows].
//
// Math (the same for every ISA; the SIMD kernels are bitwise equal to the
// scalar oracle, because every step is either exact integer arithmetic or the
// same float operation in the same order). KB is the format's scale-block
// width (32, or 256 for the _256 formats):
//   1. Each activation row is quantized per KB-column block b:
//        a = max|x|, s_x = a / 127, q_x = nearest-even(x * (127 / a)) in int8
//      (blocks with a < 1e-30 become zero; a block holding Inf/NaN gets
//      s_x = NaN so the outputs turn NaN instead of hiding it). This happens
//      once per call into the context's work memory.
//   2. Per (t, r, b): dot = sum of q_w * q_x over the KB columns (exact int32),
//      where q_w is the Q8 code or the Q4 codebook level.
//   3. acc = fma(float(dot) * d_w, s_x, acc) over b in order from acc = 0;
//      y = acc (+ bias[r]).
// The SIMD kernels feed vpdpbusd (u8 x s8) with the weights made unsigned
// (q_w + 128; for Q4 through a 16-entry lookup) and start each block's int32
// accumulator at -128 * sum(q_x), which undoes the offset exactly. AVX2 uses
// the maddubs sign trick. Rows are split across the pool in 16-row groups; each
// output is computed by exactly one thread in a fixed order, so results do
// not depend on the thread count.
//
// Step 3 costs a convert, a multiply and an FMA per block and token next to
// KB / 4 vpdpbusd: at KB = 32 that float work holds the AVX-512 kernel to
// ~75% of the vpdpbusd peak on Zen 4; at KB = 256 it is 1/8 as much.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ops/kernel_context.h"
#include "ops/weight_matrix.h"

namespace rg {

// w.format must be quantized. x, y, bias need no particular alignment; y must
// not overlap x. Runs at Int8KernelIsa(ctx.isa()) on ctx's pool and memory.
void MatMulQuantized(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
                     KernelContext& ctx);
// Several products of the same x (all of one format and column count,
// e.g. an MLP's gate and up): x is quantized once and all row groups are
// split across the pool in one hand-off. Results equal separate calls.
void MatMulQuantizedShared(std::span<const MatMulTarget> targets, const float* x, int64_t T,
                           KernelContext& ctx);
// The oracle: plain loops over the documented layout, one thread, own memory.
void MatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, float* y,
                           const float* bias);

// Block-diagonal products (the RG-LRU gates of the _256 formats) with H
// square blocks [b, b] stacked as one quantized matrix w [H*b, b]: row h*b + j
// holds column j of the checkpoint's block W[h] (ops/block_diag.h), so
//   y[t, h*b + j] = sum_i w[h*b + j, i] * x[t, h*b + i] (+ bias[h*b + j]),
// x, y [T, H*b]. Each head's b inputs are quantized on their own (blocks
// restart at the head's first column), then the same kernels run: every
// output equals MatMulQuantized of its head alone. b % 16 == 0. Targets of
// one format share x (both gates: one quantization, one hand-off).
void BlockDiagMatMulQuantized(std::span<const MatMulTarget> targets, const float* x, int64_t T, int64_t H,
                              KernelContext& ctx);
// Its oracle: MatMulQuantizedScalar per head on gathered copies.
void BlockDiagMatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, int64_t H, float* y,
                                    const float* bias);

// Work memory of products of up to T tokens and cols columns, x in up to
// `segments` segments (block-diagonal heads), at any level and format
// (KernelContext::Reserve): shared, and per thread.
size_t QuantMatMulSharedBytes(int64_t T, int64_t cols, int64_t segments = 1);
size_t QuantMatMulThreadBytes(int64_t cols);

}  // namespace rg
