// Internal to the quantized matmul (ops/quant_matmul*.cc): the activation
// scratch layout and the per-ISA kernel entry points.
//
// Quantized activations ("acts") are stored in token tiles of `nt` tokens
// (the kernel's register tile), in blocks of KB columns (the weight format's
// QuantBlockCols). Tile k holds tokens [k*nt, min(T, (k+1)*nt)), n of them,
// and starts at byte k * nt * nb * ActRecordBytes(KB). Inside a tile, block b
// is a record of n * ActRecordBytes(KB) bytes at offset b * n * ActRecordBytes(KB):
//   int32 corr[n]          -128 * sum of the block's KB int8 codes, per token
//   float sx[n]            the block's activation scale, per token
//   int32 xq[KB / 4][n]    xq[j][t] = the 4 int8 codes of columns 4j..4j+3 of token t
// so a kernel broadcasts xq[j][t] against 16 rows x 4 columns of weights.
//
// Segments (the heads of a block-diagonal product): x [T, segs * seg_cols]
// is quantized per segment, blocks restarting at each segment's first column
// (nbs = ceil(seg_cols / KB) blocks each, the last possibly partial), so a
// token has nb_acts = segs * nbs records, segment s's from s * nbs on. Weight
// row r reads segment r / seg_rows. A plain product is one segment:
// seg_cols = cols, nb_acts = nb, seg_rows = rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/weight_matrix.h"

namespace rg::quant_internal {

// Bytes per token and block: corr, sx and KB / 4 words of codes.
inline constexpr size_t ActRecordBytes(int kb) { return 8 + size_t(kb); }

inline size_t ActBytes(int64_t T, int64_t nb, int nt, int kb) {
  const int64_t tiles = (T + nt - 1) / nt;
  return size_t(tiles) * nt * nb * ActRecordBytes(kb);
}
inline uint8_t* ActTile(uint8_t* acts, int64_t k, int64_t nb, int nt, int kb) {
  return acts + size_t(k) * nt * nb * ActRecordBytes(kb);
}

// The scalar definition of activation quantization of one block of n <= kb
// values (zero-padded to kb): codes q[kb], scale *sx, code sum *sum.
void QuantizeActBlock(const float* x, int n, int kb, int8_t* q, float* sx, int32_t* sum);

// One product for the kernels: the weights, and x quantized into acts.
struct QuantKernelArgs {
  WeightFormat format;
  const uint8_t* w;  // packed weights
  int64_t rows, cols, nb, T;  // nb: weight blocks per row (= per segment of x)
  const uint8_t* acts;  // tiled as above with tile size nt
  int64_t nb_acts;      // records per token in acts
  int64_t seg_rows;     // weight rows per segment of x
  int nt;
  float* y;  // [T, rows]
  const float* bias;
};

// How a product's input splits into segments (see above).
struct ActSegments {
  int64_t count;  // segments of x
  int64_t cols;   // columns of each
  int kb;         // block width
  int64_t blocks() const { return (cols + kb - 1) / kb; }  // nbs, per segment
  int64_t records() const { return count * blocks(); }      // nb_acts, per token
};

// Quantizes tokens of tiles [k0, k1) of x [T, seg.count * seg.cols] into acts.
void QuantizeActsAvx512(const float* x, const ActSegments& seg, int64_t T, int nt, int64_t k0, int64_t k1,
                        uint8_t* acts);
void QuantizeActsAvx2(const float* x, const ActSegments& seg, int64_t T, int nt, int64_t k0, int64_t k1,
                      uint8_t* acts);
// Computes y for row groups [g0, g1) and all T tokens.
void QuantMatMulAvx512(const QuantKernelArgs& a, int64_t g0, int64_t g1);
void QuantMatMulAvx2(const QuantKernelArgs& a, int64_t g0, int64_t g1);

// Token tiles of the AVX-512 kernel. A product of at most
// OneTileMaxAvx512(f) tokens (decode, batches of up to 16 streams for the q8
// formats, 8 for the q4 ones) runs as one tile with row groups one at a time:
// one pass over the weights, in the order DRAM delivers them. A longer one
// runs in tiles of at most kPairTileAvx512 tokens over pairs of row groups:
// each broadcast code quad serves both groups' weight vectors, and the tile's
// activations stay in L1 (12 int32 + 12 f32 accumulators).
int OneTileMaxAvx512(WeightFormat f);
inline constexpr int kPairTileAvx512 = 6;
inline constexpr int kNtAvx2 = 2;

}  // namespace rg::quant_internal
