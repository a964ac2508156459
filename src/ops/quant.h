// Block-quantized weight formats Q8 and Q4: byte layout, quantization from
// f32 / bf16, and dequantization of single rows (embedding lookup).
// The matrix products over these formats are in ops/quant_matmul.h.
//
// ---------------------------------------------------------------------------
// Byte layout (version 1). Fixed, little-endian, the same for every ISA, so the
// bytes can be written to a file and mmapped back. No alignment is required.
// ---------------------------------------------------------------------------
// Four formats, two code types x two scale-block widths KB (QuantBlockCols):
//   Q8, Q4          KB = 32   (the default formats)
//   Q8_256, Q4_256  KB = 256  (opt-in: one scale per 256 columns, so the
//                   kernels apply scales 8x less often; docs/PERFORMANCE.md
//                   has their speed and accuracy)
// A matrix W [rows, cols] is cut into row groups of 16 rows (kQuantGroupRows)
// and column blocks of KB columns:
//   nb = ceil(cols / KB)   blocks per row       (columns padded to KB * nb)
//   ng = ceil(rows / 16)   row groups           (rows padded to 16 * ng)
//   H  = header bytes: 32 (Q8, Q4) or 64 (the _256 formats: 32 zero bytes of
//        pad keep the codes of every block 64-byte aligned)
//   BB = block bytes H + 16 * KB * bits / 8: Q8 544, Q4 288, Q8_256 4160,
//        Q4_256 2112                         (QuantBlockBytes)
//   total bytes = ng * nb * BB                  (QuantizedBytes)
// Row group g (rows 16g .. 16g+15) is the byte range [g*nb*BB, (g+1)*nb*BB);
// inside it, block b (columns KB*b .. KB*b+KB-1) is the range [b*BB, (b+1)*BB):
//
//   bytes [0, 32): 16 scales d[i], IEEE binary16, little-endian; d[i] belongs
//                  to row 16g + i (i = 0..15). Bytes [32, H) are zero.
//   Q8 codes: 16 * KB int8 codes q (two's complement, -127..127).
//        byte H + 64*j + 4*i + e   (j = 0..KB/4-1, i = 0..15, e = 0..3)
//        holds row 16g+i, column KB*b + 4j + e.      W = d[i] * q.
//   Q4 codes: 8 * KB bytes of 4-bit codes k (0..15).
//        byte H + 64*c + 4*i + e   (c = 0..KB/8-1, i = 0..15, e = 0..3):
//          low  nibble: row 16g+i, column KB*b + 4*(2c)   + e
//          high nibble: row 16g+i, column KB*b + 4*(2c+1) + e
//        W = d[i] * kQ4Codebook[k].
//
// So each row group is one linear stream: the kernels read 64-byte vectors that
// hold 4 consecutive columns of 16 rows (one int32 lane per row), which is the
// operand shape of vpdpbusd; the 16 scales of a block convert with one
// vcvtph2ps. Cost: Q8 8.5 bits/weight, Q4 4.5, Q8_256 8.125, Q4_256 4.125.
//
// Padding: columns >= cols hold code 0 (Q8 value 0; Q4 nibble 0) and rows >=
// rows hold scale 0 and code 0. Readers must ignore them (kernels zero-pad the
// activations, so padded columns contribute exactly 0). A row range starting at
// a multiple of 16 is itself a valid matrix: QuantizedRowSlice.
//
// Quantization (deterministic, independent of thread count), per (row,
// block) of KB columns, the same rule at both widths:
//   Q8: per (row, block) d = max|w| / 127, rounded to binary16 and bumped up
//       one ulp if rounding made it smaller, so |w / d| <= 127 and no value
//       clips: |W - w| <= d/2 for every element. q = nearest-even(w / d).
//   Q4: a fixed non-uniform 16-level int8 codebook (kQ4Codebook), fitted
//       offline by Lloyd iterations on blocks of 32 drawn half from N(0,1),
//       half from a Student-t(4). At the same 4.5 bits it beats the uniform
//       q4_0 grid (levels -8..7, d = max/-8): relative RMS error on Gaussian
//       weights 0.0747 vs 0.0859; Student-t(4) 0.0836 vs 0.1156; Laplace
//       0.0805 vs 0.1068 (bench_quant, 2560 x 7680). Q8: 0.0054 on Gaussian. Per (row, block) the scale is searched: the largest
//       |w| mapped onto either end of the codebook times {1.05, 0.967, 0.883,
//       0.8} (8 binary16 candidates), then up to two least-squares refits of
//       the scale for the chosen codes; the smallest squared error wins and
//       codes are the nearest level (ties to the lower one). ~30 Mweights/s
//       per thread.
//   Blocks that are all zero get d = 0. Non-finite weights, or weights so
//   large that a scale overflows binary16 (|w| > ~8.3e6), are rejected with
//   rg::Error. Scales below the binary16 normal range lose relative precision.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/threads.h"
#include "ops/weight_matrix.h"

namespace rg {

inline constexpr int kQuantFormatVersion = 1;
inline constexpr int kQuantGroupRows = 16;

// Q4 levels (ascending). The kernels use them as int8 (|k| <= 127).
inline constexpr int8_t kQ4Codebook[16] = {-127, -89, -67, -51, -37, -26, -15, -6,
                                           3,    13,  24,  36,  50,  66,  86,  111};

// True for the four block formats.
bool IsQuantizedFormat(WeightFormat f);
// True for Q4 and Q4_256 (codebook codes), false for the int8 ones.
bool IsQ4Family(WeightFormat f);
// Columns per scale block (KB): 32 or 256.
int QuantBlockCols(WeightFormat f);
// Bytes before a block's codes (H): 32 or 64.
int QuantHeaderBytes(WeightFormat f);

// Bytes of one 16-row x KB-column block (scales included).
size_t QuantBlockBytes(WeightFormat f);
inline int64_t QuantBlocksPerRow(WeightFormat f, int64_t cols) {
  return (cols + QuantBlockCols(f) - 1) / QuantBlockCols(f);
}
inline int64_t QuantRowGroups(int64_t rows) { return (rows + kQuantGroupRows - 1) / kQuantGroupRows; }
// Bytes of one 16-row group: QuantBlocksPerRow(f, cols) * QuantBlockBytes(f).
size_t QuantizedGroupBytes(WeightFormat f, int64_t cols);
// Bytes of a whole [rows, cols] matrix, padding included.
size_t QuantizedBytes(WeightFormat f, int64_t rows, int64_t cols);

// Packs src [rows, cols] (row-major) into dst (QuantizedBytes(f, rows, cols)
// bytes, any alignment). Row groups are split across the pool; the bytes do not
// depend on the pool size. Throws rg::Error on non-finite or too large weights.
// A big matrix can be packed in row slices [r0, r0 + n) with r0 and n
// multiples of 16 (n may be shorter for the last slice): pass src + r0 * cols,
// n rows, and dst + (r0 / 16) * QuantizedGroupBytes(f, cols).
void QuantizeMatrix(WeightFormat f, const float* src, int64_t rows, int64_t cols, void* dst,
                    ThreadPool& pool);
// Same, from bfloat16 bits.
void QuantizeMatrixBF16(WeightFormat f, const uint16_t* src, int64_t rows, int64_t cols,
                        void* dst, ThreadPool& pool);

// Packs the H square blocks of a block-diagonal matrix in the checkpoint's
// layout, src [H, b_in, b_out] (ops/block_diag.h), as one matrix [H*b, b] whose
// row h*b + j is column j of block h (the layout of BlockDiagMatMulQuantized):
// QuantizedBytes(f, H*b, b) bytes. b % 16 == 0.
void QuantizeBlockDiag(WeightFormat f, const float* src, int64_t H, int64_t b, void* dst, ThreadPool& pool);

// out[c] = W[r, c] for c in [0, cols) (the dequantized value d * level).
void DequantizeRow(const WeightMatrix& w, int64_t r, float* out);

// Rows [r0, r1) of a quantized matrix as a matrix of its own (no copy).
// r0 must be a multiple of 16.
WeightMatrix QuantizedRowSlice(const WeightMatrix& w, int64_t r0, int64_t r1);

namespace quant_internal {
// float -> binary16, round to nearest even (overflow -> inf, NaN -> NaN).
uint16_t F32ToF16(float f);
// Nearest integer, ties to even, for |v| <= 2^22 (what cvtps2dq does under
// the default MXCSR). Adding and subtracting 1.5 * 2^23 leaves the rounded
// value (IEEE arithmetic: the project builds without -ffast-math); unlike
// std::nearbyint it is not a libm call.
inline float RoundHalfEven(float v) {
  constexpr float kMagic = 12582912.f;
  return (v + kMagic) - kMagic;
}
}  // namespace quant_internal

}  // namespace rg
