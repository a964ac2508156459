// Dispatch, ISA detection, activation quantization (scalar definition) and the
// scalar oracle of the quantized matmul. SIMD kernels: quant_matmul_avx2.cc,
// quant_matmul_avx512.cc.
#include "ops/quant_matmul.h"

#include "ops/cpu_features.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/error.h"
#include "ops/quant.h"
#include "ops/quant_kernels.h"

namespace rg {

namespace quant_internal {

void QuantizeActBlock(const float* x, int n, int8_t* q, float* sx, int32_t* sum) {
  std::memset(q, 0, 32);
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

// ---------------------------------------------------------------- detection

namespace {

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}

bool CpuHasAvx512Vnni() {
  __builtin_cpu_init();
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
}

// The level chosen by ops/cpu_features.h (RG_ISA, ForceIsaForTesting), with
// the int8 kernels' extra requirement: the AVX-512 path needs VNNI.
QuantIsa DetectBest() {
  static const bool avx512_vnni = CpuHasAvx512Vnni(), avx2 = CpuHasAvx2();
  switch (ActiveIsa()) {
    case Isa::kAvx512:
      if (avx512_vnni) return QuantIsa::Avx512;
      [[fallthrough]];
    case Isa::kAvx2:
      if (avx2) return QuantIsa::Avx2;
      [[fallthrough]];
    default:
      return QuantIsa::Scalar;
  }
}

}  // namespace

const char* QuantIsaName(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::Scalar: return "scalar";
    case QuantIsa::Avx2: return "avx2";
    case QuantIsa::Avx512: return "avx512";
  }
  return "?";
}

bool QuantIsaSupported(QuantIsa isa) {
  static const bool avx2 = CpuHasAvx2(), avx512 = CpuHasAvx512Vnni();
  switch (isa) {
    case QuantIsa::Scalar: return true;
    case QuantIsa::Avx2: return avx2;
    case QuantIsa::Avx512: return avx512;
  }
  return false;
}

QuantIsa QuantBestIsa() { return DetectBest(); }

// ------------------------------------------------------------ scalar kernel

namespace {

inline float BlockScale(const uint8_t* blk, int i) {
  return F16ToF32(uint16_t(blk[2 * i] | (uint16_t(blk[2 * i + 1]) << 8)));
}

// Integer level of row i (in its group), column c (< 32) of a block.
inline int32_t Level(WeightFormat f, const uint8_t* blk, int i, int c) {
  const int j = c / 4, e = c % 4;
  if (f == WeightFormat::Q8) return int8_t(blk[32 + 64 * j + 4 * i + e]);
  return kQ4Codebook[(blk[32 + 64 * (j / 2) + 4 * i + e] >> (4 * (j % 2))) & 15];
}

// Rows [r0, r1), all T tokens, from plain activations xq [T, nb*32], sx [T, nb].
void ScalarRows(const WeightMatrix& w, const int8_t* xq, const float* sx, int64_t T, int64_t r0,
                int64_t r1, float* y, const float* bias) {
  const int64_t nb = QuantBlocksPerRow(w.cols);
  const size_t bb = QuantBlockBytes(w.format), gbytes = QuantizedGroupBytes(w.format, w.cols);
  thread_local std::vector<int8_t> lv;  // grow-only: no allocation in steady state
  thread_local std::vector<float> d;
  lv.resize(size_t(nb) * 32);
  d.resize(size_t(nb));
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* gp = static_cast<const uint8_t*>(w.data) + size_t(r / 16) * gbytes;
    const int i = int(r % 16);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = gp + size_t(b) * bb;
      d[b] = BlockScale(blk, i);
      for (int c = 0; c < 32; ++c) lv[b * 32 + c] = int8_t(Level(w.format, blk, i, c));
    }
    for (int64_t t = 0; t < T; ++t) {
      const int8_t* xt = xq + t * nb * 32;
      float acc = 0.f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;
        for (int c = 0; c < 32; ++c) dot += int32_t(lv[b * 32 + c]) * int32_t(xt[b * 32 + c]);
        acc = std::fma(float(dot) * d[b], sx[t * nb + b], acc);
      }
      y[t * w.rows + r] = bias ? acc + bias[r] : acc;
    }
  }
}

void QuantizePlain(const float* x, int64_t cols, int64_t nb, int64_t t0, int64_t t1, int8_t* xq,
                   float* sx) {
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      int32_t sum;
      QuantizeActBlock(x + t * cols + b * 32, int(std::min<int64_t>(32, cols - b * 32)),
                       xq + (t * nb + b) * 32, sx + t * nb + b, &sum);
    }
}

void CheckArgs(const char* who, const WeightMatrix& w, int64_t T) {
  RG_CHECK(IsQuantizedFormat(w.format), who, ": weight format ", WeightFormatName(w.format),
           " is not quantized");
  RG_CHECK(w.rows >= 0 && w.cols >= 0 && T >= 0, who, ": bad shape [", w.rows, ", ", w.cols,
           "] x T=", T);
}

// Grow-only per-thread scratch for quantized activations.
uint8_t* Scratch(size_t bytes) {
  thread_local AlignedBuffer buf;
  if (buf.size() < bytes) buf.Resize(std::max(bytes, buf.size() + buf.size() / 2));
  return buf.data<uint8_t>();
}

// Below this many activation elements the caller quantizes alone (no extra
// fork/join round).
constexpr int64_t kInlineActElems = 32 * 1024;

// The SIMD path for products sharing x (same format and cols): quantize x
// once, then one hand-off over the row groups of all the products.
void RunSimd(QuantIsa isa, std::span<const MatMulTarget> targets, const float* x, int64_t T,
             ThreadPool& pool) {
  const WeightMatrix& w0 = *targets[0].w;
  const int64_t nb = QuantBlocksPerRow(w0.cols);
  const bool avx512 = isa == QuantIsa::Avx512;
  // Token tile: at most the kernel's register tile, balanced so that no tile
  // is much smaller than the others (T = 16 runs as 8 + 8, not 12 + 4: a
  // short tile pays the per-block weight loads for few products).
  const int nt_max = !avx512 ? kNtAvx2 : w0.format == WeightFormat::Q4 ? kNtAvx512Q4 : kNtAvx512;
  const int64_t n_tiles = (T + nt_max - 1) / nt_max;
  const int nt = int((T + n_tiles - 1) / n_tiles);
  auto quantize = avx512 ? QuantizeActsAvx512 : QuantizeActsAvx2;
  auto kernel = avx512 ? QuantMatMulAvx512 : QuantMatMulAvx2;
  uint8_t* acts = Scratch(ActBytes(T, nb, nt));
  const int64_t tiles = (T + nt - 1) / nt;
  if (T * w0.cols <= kInlineActElems) quantize(x, w0.cols, nb, T, nt, 0, tiles, acts);
  else
    pool.ParallelFor(tiles, 1, [&](int64_t k0, int64_t k1, int) {
      quantize(x, w0.cols, nb, T, nt, k0, k1, acts);
    });
  // Row groups of all products, end to end: product i owns [first[i], first[i+1]).
  constexpr size_t kMaxTargets = 8;
  RG_CHECK(targets.size() <= kMaxTargets, "MatMulQuantizedShared: at most ", kMaxTargets, " products");
  int64_t first[kMaxTargets + 1] = {0};
  for (size_t i = 0; i < targets.size(); ++i) first[i + 1] = first[i] + QuantRowGroups(targets[i].w->rows);
  pool.ParallelFor(first[targets.size()], 1, [&](int64_t g0, int64_t g1, int) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const int64_t lo = std::max(g0, first[i]), hi = std::min(g1, first[i + 1]);
      if (lo >= hi) continue;
      const WeightMatrix& w = *targets[i].w;
      const QuantKernelArgs args{w.format, static_cast<const uint8_t*>(w.data), w.rows, w.cols, nb, T,
                                 acts, nt, targets[i].y, targets[i].bias};
      kernel(args, lo - first[i], hi - first[i]);
    }
  });
}

}  // namespace

void MatMulQuantizedScalar(const WeightMatrix& w, const float* x, int64_t T, float* y,
                           const float* bias) {
  CheckArgs("MatMulQuantizedScalar", w, T);
  const int64_t nb = QuantBlocksPerRow(w.cols);
  std::vector<int8_t> xq(size_t(T * nb) * 32);
  std::vector<float> sx(size_t(T * nb));
  QuantizePlain(x, w.cols, nb, 0, T, xq.data(), sx.data());
  ScalarRows(w, xq.data(), sx.data(), T, 0, w.rows, y, bias);
}

void MatMulQuantizedIsa(QuantIsa isa, const WeightMatrix& w, const float* x, int64_t T, float* y,
                        const float* bias, ThreadPool& pool) {
  CheckArgs("MatMulQuantized", w, T);
  RG_CHECK(QuantIsaSupported(isa), "MatMulQuantized: ISA ", QuantIsaName(isa),
           " not supported by this CPU");
  if (T == 0 || w.rows == 0) return;
  const int64_t nb = QuantBlocksPerRow(w.cols), ng = QuantRowGroups(w.rows);
  const bool inline_acts = T * w.cols <= kInlineActElems;

  if (isa == QuantIsa::Scalar) {
    uint8_t* s = Scratch(size_t(T * nb) * 36);
    int8_t* xq = reinterpret_cast<int8_t*>(s);
    float* sx = reinterpret_cast<float*>(s + size_t(T * nb) * 32);
    if (inline_acts) QuantizePlain(x, w.cols, nb, 0, T, xq, sx);
    else
      pool.ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
        QuantizePlain(x, w.cols, nb, t0, t1, xq, sx);
      });
    pool.ParallelFor(ng, 1, [&](int64_t g0, int64_t g1, int) {
      ScalarRows(w, xq, sx, T, g0 * 16, std::min(w.rows, g1 * 16), y, bias);
    });
    return;
  }

  const MatMulTarget target{&w, y, bias};
  RunSimd(isa, std::span<const MatMulTarget>(&target, 1), x, T, pool);
}

void MatMulQuantizedShared(std::span<const MatMulTarget> targets, const float* x, int64_t T,
                           ThreadPool& pool) {
  if (targets.empty() || T == 0) return;
  const WeightMatrix& w0 = *targets[0].w;
  for (const MatMulTarget& tg : targets) {
    CheckArgs("MatMulQuantizedShared", *tg.w, T);
    RG_CHECK(tg.w->format == w0.format && tg.w->cols == w0.cols,
             "MatMulQuantizedShared: products must share the format and column count");
  }
  const QuantIsa isa = QuantBestIsa();
  if (isa == QuantIsa::Scalar) {
    for (const MatMulTarget& tg : targets) MatMulQuantizedIsa(isa, *tg.w, x, T, tg.y, tg.bias, pool);
    return;
  }
  RunSimd(isa, targets, x, T, pool);
}

void MatMulQuantized(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
                     ThreadPool& pool) {
  MatMulQuantizedIsa(QuantBestIsa(), w, x, T, y, bias, pool);
}

}  // namespace rg
