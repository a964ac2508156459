// Block-diagonal product with H square F32 blocks (the RG-LRU gates), in the
// checkpoint's own layout (HF / the reference: einsum "...hi,hij->...hj");
// the _256 formats run them quantized instead (ops/quant_matmul.h
// BlockDiagMatMulQuantized):
//   y[t, h*b + j] = bias[h*b + j] + sum_i x[t, h*b + i] * W[h, i, j]
// w [H, b_in, b_out], x and y [T, H*b], bias [H*b] or null; y must not
// overlap x.
//
// Every kernel forms each output the same way: the sum over i in order from
// 0, then + bias; the SIMD kernels use fused multiply-adds, the scalar oracle
// a multiply and an add. The order does not depend on T or on the tile, so a
// row gives the same bits in prefill and in decode at one ISA level.
//
// Why this orientation (outputs in lanes, one activation broadcast against a
// row of W): with b = 256 a dot-product kernel (inputs in lanes) spends a
// horizontal reduction per 256 multiply-adds, and the gathered copies of
// each head's inputs and outputs; this form needs neither.
#pragma once

#include <cstdint>

#include "ops/kernel_context.h"

namespace rg {

// Whole heads are split across ctx's pool: one hand-off for all H products.
void BlockDiagMatMul(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                     const float* bias, KernelContext& ctx);

// The oracle: plain loops, one thread.
void BlockDiagMatMulScalar(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                           const float* bias);

}  // namespace rg
