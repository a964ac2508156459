// Matrix products with Q8 / Q4 weights (layout in ops/quant.h):
//   y[t, r] = sum_c W[r, c] * x[t, c] (+ bias[r]),  x [T, cols], y [T, rows].
//
// Math (the same for every ISA; the SIMD kernels are bitwise equal to the
// scalar oracle, because every step is either exact integer arithmetic or the
// same float operation in the same order):
//   1. Each activation row is quantized per 32-column block b:
//        a = max|x|, s_x = a / 127, q_x = nearest-even(x * (127 / a)) in int8
//      (blocks with a < 1e-30 become zero; a block holding Inf/NaN gets
//      s_x = NaN so the outputs turn NaN instead of hiding it). This happens
//      once per call into a grow-only per-thread scratch buffer.
//   2. Per (t, r, b): dot = sum of q_w * q_x over the 32 columns (exact int32),
//      where q_w is the Q8 code or the Q4 codebook level.
//   3. acc = fma(float(dot) * d_w, s_x, acc) over b in order from acc = 0;
//      y = acc (+ bias[r]).
// The SIMD kernels feed vpdpbusd (u8 x s8) with the weights made unsigned
// (q_w + 128; for Q4 through a 16-entry lookup) and start each block's int32
// accumulator at -128 * sum(q_x), which undoes the offset exactly. AVX2 uses
// the maddubs sign trick. Rows are split across the pool in 16-row groups; each
// output is computed by exactly one thread in a fixed order, so results do
// not depend on the thread count.
#pragma once

#include <cstdint>
#include <span>

#include "core/threads.h"
#include "ops/weight_matrix.h"

namespace rg {

// Kernel levels. Until ops/cpu_features.h exists, the choice lives here:
// the best level the CPU supports, capped by the env var RG_ISA
// (scalar | avx2 | avx512), read once.
enum class QuantIsa { Scalar, Avx2, Avx512 };
const char* QuantIsaName(QuantIsa isa);
bool QuantIsaSupported(QuantIsa isa);  // can this CPU run it?
QuantIsa QuantBestIsa();               // ActiveIsa() (cpu_features.h), lowered if VNNI is missing

// w.format must be Q8 or Q4. x, y, bias need no particular alignment; y must
// not overlap x. Uses QuantBestIsa().
void MatMulQuantized(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
                     ThreadPool& pool);
// Same with an explicit level (tests, benchmarks). Throws if unsupported.
void MatMulQuantizedIsa(QuantIsa isa, const WeightMatrix& w, const float* x, int64_t T, float* y,
                        const float* bias, ThreadPool& pool);
// Several Q8/Q4 products of the same x (all of one format and column count,
// e.g. an MLP's gate and up): x is quantized once and all row groups are
// split across the pool in one hand-off. Results equal separate calls.
void MatMulQuantizedShared(std::span<const MatMulTarget> targets, const float* x, int64_t T,
                           ThreadPool& pool);
// The oracle: plain loops over the documented layout, one thread, no scratch.
void MatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, float* y,
                           const float* bias);

}  // namespace rg
