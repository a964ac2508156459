// Dispatch, activation quantization (scalar definition) and the scalar
// oracle of the quantized matmul. SIMD kernels: quant_matmul_avx2.cc,
// quant_matmul_avx512.cc.
#include "ops/quant_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/cpu_features.h"
#include "ops/quant.h"
#include "ops/quant_kernels.h"

namespace rg {

namespace quant_internal {

void QuantizeActBlock(const float* x, int n, int kb, int8_t* q, float* sx, int32_t* sum) {
  std::memset(q, 0, size_t(kb));
  *sum = 0;
  float amax = 0.f;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    finite = finite && std::isfinite(x[i]);
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  if (!finite) {
    *sx = NAN;
    return;
  }
  if (amax < 1e-30f) {
    *sx = 0.f;
    return;
  }
  const float inv = 127.f / amax;
  *sx = amax / 127.f;
  int32_t s = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = int8_t(RoundHalfEven(x[i] * inv));
    s += q[i];
  }
  *sum = s;
}

}  // namespace quant_internal

using namespace quant_internal;

// ------------------------------------------------------------ scalar kernel

namespace {

inline float BlockScale(const uint8_t* blk, int i) {
  return F16ToF32(uint16_t(blk[2 * i] | (uint16_t(blk[2 * i + 1]) << 8)));
}

// Integer level of row i (in its group), column c (< KB) of a block.
inline int32_t Level(WeightFormat f, int header, const uint8_t* blk, int i, int c) {
  const int j = c / 4, e = c % 4;
  if (!IsQ4Family(f)) return int8_t(blk[header + 64 * j + 4 * i + e]);
  return kQ4Codebook[(blk[header + 64 * (j / 2) + 4 * i + e] >> (4 * (j % 2))) & 15];
}

// Bytes of ScalarRows' work memory: one row's levels and scales.
size_t ScalarRowBytes(WeightFormat f, int64_t cols) {
  const int64_t nb = QuantBlocksPerRow(f, cols);
  return size_t(nb) * QuantBlockCols(f) + size_t(nb) * sizeof(float);
}

// Rows [r0, r1), all T tokens, from plain activations xq [T, nb_acts*KB],
// sx [T, nb_acts] of segments `seg` (row r reads segment r / seg_rows).
// work: ScalarRowBytes(w.format, w.cols) bytes.
void ScalarRows(const WeightMatrix& w, const ActSegments& seg, int64_t seg_rows, const int8_t* xq,
                const float* sx, int64_t T, int64_t r0, int64_t r1, float* y, const float* bias, uint8_t* work) {
  const int kb = QuantBlockCols(w.format), header = QuantHeaderBytes(w.format);
  const int64_t nb = QuantBlocksPerRow(w.format, w.cols), nb_acts = seg.records();
  const size_t bb = QuantBlockBytes(w.format), gbytes = QuantizedGroupBytes(w.format, w.cols);
  int8_t* lv = reinterpret_cast<int8_t*>(work);                   // [nb * KB] one row's levels
  float* d = reinterpret_cast<float*>(work + size_t(nb) * kb);    // [nb] its scales
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* gp = static_cast<const uint8_t*>(w.data) + size_t(r / 16) * gbytes;
    const int i = int(r % 16);
    const int64_t rec0 = r / seg_rows * nb;  // the row's first record in a token's
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = gp + size_t(b) * bb;
      d[b] = BlockScale(blk, i);
      for (int c = 0; c < kb; ++c) lv[b * kb + c] = int8_t(Level(w.format, header, blk, i, c));
    }
    for (int64_t t = 0; t < T; ++t) {
      const int8_t* xt = xq + (t * nb_acts + rec0) * kb;
      const float* st = sx + t * nb_acts + rec0;
      float acc = 0.f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;
        for (int c = 0; c < kb; ++c) dot += int32_t(lv[b * kb + c]) * int32_t(xt[b * kb + c]);
        acc = std::fma(float(dot) * d[b], st[b], acc);
      }
      y[t * w.rows + r] = bias ? acc + bias[r] : acc;
    }
  }
}

// xq [T, nb_acts*KB], sx [T, nb_acts] for tokens [t0, t1) of x [T, count * cols].
void QuantizePlain(const float* x, const ActSegments& seg, int64_t t0, int64_t t1, int8_t* xq, float* sx) {
  const int kb = seg.kb;
  const int64_t nbs = seg.blocks(), nb = seg.records(), ld = seg.count * seg.cols;
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t s = 0; s < seg.count; ++s)
      for (int64_t b = 0; b < nbs; ++b) {
        const int64_t rec = t * nb + s * nbs + b;
        int32_t sum;
        QuantizeActBlock(x + t * ld + s * seg.cols + b * kb, int(std::min<int64_t>(kb, seg.cols - b * kb)), kb,
                         xq + rec * kb, sx + rec, &sum);
      }
}

void CheckArgs(const char* who, const WeightMatrix& w, int64_t T) {
  RG_CHECK(IsQuantizedFormat(w.format), who, ": weight format ", WeightFormatName(w.format),
           " is not quantized");
  RG_CHECK(w.rows >= 0 && w.cols >= 0 && T >= 0, who, ": bad shape [", w.rows, ", ", w.cols,
           "] x T=", T);
}

// Below this many activation elements the caller quantizes alone (no extra
// fork/join round).
constexpr int64_t kInlineActElems = 32 * 1024;

// The token tile of a SIMD product (AVX-512: one tile up to
// OneTileMaxAvx512, see ops/quant_kernels.h): at most the kernel's register
// tile, balanced so that no tile is much smaller than the others (T = 13 at
// tile 6 runs as 5 + 5 + 3, not 6 + 6 + 1: a short tile pays the per-block
// weight loads for few products).
int TileTokens(Isa isa, WeightFormat f, int64_t T) {
  if (isa == Isa::kAvx512 && T <= OneTileMaxAvx512(f)) return int(T);
  const int nt_max = isa == Isa::kAvx512 ? kPairTileAvx512 : kNtAvx2;
  const int64_t n_tiles = (T + nt_max - 1) / nt_max;
  return int((T + n_tiles - 1) / n_tiles);
}

// The scalar level: x quantized plainly into shared memory, rows split.
void RunScalar(const WeightMatrix& w, const ActSegments& seg, int64_t seg_rows, const float* x, int64_t T,
               float* y, const float* bias, KernelContext& ctx) {
  const int kb = seg.kb;
  const int64_t nb = seg.records(), ng = QuantRowGroups(w.rows);
  uint8_t* s = ctx.Shared(size_t(T * nb) * (kb + sizeof(float)));
  int8_t* xq = reinterpret_cast<int8_t*>(s);                        // [T, nb * KB]
  float* sx = reinterpret_cast<float*>(s + size_t(T * nb) * kb);    // [T, nb]
  if (T * seg.count * seg.cols <= kInlineActElems) QuantizePlain(x, seg, 0, T, xq, sx);
  else
    ctx.pool().ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) { QuantizePlain(x, seg, t0, t1, xq, sx); });
  const size_t work = ScalarRowBytes(w.format, w.cols);
  ctx.pool().ParallelFor(ng, 1, [&](int64_t g0, int64_t g1, int th) {
    ScalarRows(w, seg, seg_rows, xq, sx, T, g0 * 16, std::min(w.rows, g1 * 16), y, bias, ctx.PerThread(th, work));
  });
}

// The SIMD path for products sharing x (same format and cols): quantize x
// once, then one hand-off over the row groups of all the products. Each
// product's rows read segments of seg_rows rows (its whole height if 0).
void RunSimd(Isa isa, std::span<const MatMulTarget> targets, const ActSegments& seg, int64_t seg_rows,
             const float* x, int64_t T, KernelContext& ctx) {
  const WeightMatrix& w0 = *targets[0].w;
  const int64_t nb = QuantBlocksPerRow(w0.format, w0.cols), nb_acts = seg.records();
  const bool avx512 = isa == Isa::kAvx512;
  const int nt = TileTokens(isa, w0.format, T);
  auto quantize = avx512 ? QuantizeActsAvx512 : QuantizeActsAvx2;
  auto kernel = avx512 ? QuantMatMulAvx512 : QuantMatMulAvx2;
  uint8_t* acts = ctx.Shared(ActBytes(T, nb_acts, nt, seg.kb));
  const int64_t tiles = (T + nt - 1) / nt;
  if (T * seg.count * seg.cols <= kInlineActElems) quantize(x, seg, T, nt, 0, tiles, acts);
  else
    ctx.pool().ParallelFor(tiles, 1, [&](int64_t k0, int64_t k1, int) { quantize(x, seg, T, nt, k0, k1, acts); });
  // Row groups of all products, end to end: product i owns [first[i], first[i+1]).
  constexpr size_t kMaxTargets = 8;
  RG_CHECK(targets.size() <= kMaxTargets, "MatMulQuantizedShared: at most ", kMaxTargets, " products");
  int64_t first[kMaxTargets + 1] = {0};
  for (size_t i = 0; i < targets.size(); ++i) first[i + 1] = first[i] + QuantRowGroups(targets[i].w->rows);
  ctx.pool().ParallelFor(first[targets.size()], 1, [&](int64_t g0, int64_t g1, int) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const int64_t lo = std::max(g0, first[i]), hi = std::min(g1, first[i + 1]);
      if (lo >= hi) continue;
      const WeightMatrix& w = *targets[i].w;
      const QuantKernelArgs args{w.format, static_cast<const uint8_t*>(w.data), w.rows, w.cols, nb, T,
                                 acts, nb_acts, seg_rows > 0 ? seg_rows : w.rows, nt, targets[i].y,
                                 targets[i].bias};
      kernel(args, lo - first[i], hi - first[i]);
    }
  });
}

// Products of the same x at the context's level (targets checked).
void Run(std::span<const MatMulTarget> targets, const ActSegments& seg, int64_t seg_rows, const float* x,
         int64_t T, KernelContext& ctx) {
  const Isa isa = Int8KernelIsa(ctx.isa());
  if (isa == Isa::kScalar) {
    for (const MatMulTarget& tg : targets)
      if (tg.w->rows > 0) RunScalar(*tg.w, seg, seg_rows > 0 ? seg_rows : tg.w->rows, x, T, tg.y, tg.bias, ctx);
    return;
  }
  bool any_rows = false;
  for (const MatMulTarget& tg : targets) any_rows = any_rows || tg.w->rows > 0;
  if (any_rows) RunSimd(isa, targets, seg, seg_rows, x, T, ctx);
}

}  // namespace

void MatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, float* y,
                           const float* bias) {
  CheckArgs("MatMulQuantizedScalar", w, T);
  const ActSegments seg{1, w.cols, QuantBlockCols(w.format)};
  std::vector<int8_t> xq(size_t(T * seg.records()) * seg.kb);
  std::vector<float> sx(size_t(T * seg.records()));
  std::vector<uint8_t> work(ScalarRowBytes(w.format, w.cols));
  QuantizePlain(x, seg, 0, T, xq.data(), sx.data());
  ScalarRows(w, seg, w.rows, xq.data(), sx.data(), T, 0, w.rows, y, bias, work.data());
}

void MatMulQuantizedShared(std::span<const MatMulTarget> targets, const float* x, int64_t T,
                           KernelContext& ctx) {
  if (targets.empty() || T == 0) return;
  const WeightMatrix& w0 = *targets[0].w;
  for (const MatMulTarget& tg : targets) {
    CheckArgs("MatMulQuantized", *tg.w, T);
    RG_CHECK(tg.w->format == w0.format && tg.w->cols == w0.cols,
             "MatMulQuantizedShared: products must share the format and column count");
  }
  Run(targets, ActSegments{1, w0.cols, QuantBlockCols(w0.format)}, 0, x, T, ctx);
}

void MatMulQuantized(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
                     KernelContext& ctx) {
  const MatMulTarget target{&w, y, bias};
  MatMulQuantizedShared(std::span<const MatMulTarget>(&target, 1), x, T, ctx);
}

namespace {

void CheckBlockDiag(const WeightMatrix& w, int64_t T, int64_t H, int64_t b) {
  CheckArgs("BlockDiagMatMulQuantized", w, T);
  RG_CHECK(H > 0 && b > 0 && w.rows == H * b && w.cols == b, "BlockDiagMatMulQuantized: weights [", w.rows, ", ",
           w.cols, "] are not ", H, " heads of [", b, ", ", b, "] stacked as [H*b, b]");
  RG_CHECK(b % 16 == 0, "BlockDiagMatMulQuantized: block width ", b,
           " is not a multiple of 16 (a row group must lie in one head)");
}

}  // namespace

void BlockDiagMatMulQuantized(std::span<const MatMulTarget> targets, const float* x, int64_t T, int64_t H,
                              KernelContext& ctx) {
  if (targets.empty() || T == 0) return;
  const WeightMatrix& w0 = *targets[0].w;
  const int64_t b = w0.cols;
  for (const MatMulTarget& tg : targets) {
    CheckBlockDiag(*tg.w, T, H, b);
    RG_CHECK(tg.w->format == w0.format, "BlockDiagMatMulQuantized: products must share the format");
  }
  Run(targets, ActSegments{H, b, QuantBlockCols(w0.format)}, b, x, T, ctx);
}

void BlockDiagMatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, int64_t H, float* y,
                                    const float* bias) {
  CheckBlockDiag(w, T, H, w.cols);
  const int64_t b = w.cols, L = H * b;
  std::vector<float> xh(size_t(T * b)), yh(size_t(T * b));  // [T, b] one head's input, output
  for (int64_t h = 0; h < H; ++h) {
    const WeightMatrix wh = QuantizedRowSlice(w, h * b, (h + 1) * b);
    for (int64_t t = 0; t < T; ++t) std::copy_n(x + t * L + h * b, b, xh.data() + t * b);
    MatMulQuantizedScalar(wh, xh.data(), T, yh.data(), bias ? bias + h * b : nullptr);
    for (int64_t t = 0; t < T; ++t) std::copy_n(yh.data() + t * b, b, y + t * L + h * b);
  }
}

size_t QuantMatMulSharedBytes(int64_t T, int64_t cols, int64_t segments) {
  size_t most = 0;
  for (WeightFormat f : kAllWeightFormats) {
    if (!IsQuantizedFormat(f)) continue;
    const int kb = QuantBlockCols(f);
    // Segments add at most one partial block each.
    const int64_t nb = QuantBlocksPerRow(f, cols) + segments - 1;
    most = std::max(most, size_t(T * nb) * (kb + sizeof(float)));
    for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) most = std::max(most, ActBytes(T, nb, TileTokens(isa, f, T), kb));
  }
  return most;
}

size_t QuantMatMulThreadBytes(int64_t cols) {
  size_t most = 0;
  for (WeightFormat f : kAllWeightFormats)
    if (IsQuantizedFormat(f)) most = std::max(most, ScalarRowBytes(f, cols));
  return most;
}

}  // namespace rg
