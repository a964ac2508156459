// BF16-weight kernels: scalar, AVX2 and AVX-512 (see matmul_kernels.h).
// Exact mode widens weights to f32 (a 16-bit shift) and multiplies-adds in
// f32; the AVX2 GEMM widens while packing and then shares the f32
// micro-kernel. Fast mode (AVX512_BF16) rounds activations to bf16 and runs
// a packed GEMM on vdpbf16ps (weight pair x activation pair, f32 sums).

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* self-init).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "ops/matmul_kernels.h"
#include "ops/matmul_simd.h"

namespace rg::mm {

// ================================================================= scalar
namespace scalar_bf16 {

// Weights may sit at any byte offset (mmapped files): load through memcpy.
inline float Load(const char* p) {
  uint16_t b;
  std::memcpy(&b, p, sizeof b);
  return BF16ToF32(b);
}

}  // namespace scalar_bf16

FormatKernels Bf16KernelsScalar() {
  FormatKernels k;
  k.skinny = SkinnyScalar<scalar_bf16::Load, 2>;
  return k;
}

// ================================================================= AVX-512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
namespace avx512 {
namespace {

// ---- One token (decode): the exact kernel for T = 1.
// A 32-bit lane of a bf16 weight vector holds the pair (w[2i], w[2i+1]):
// w[2i] << 16 and w[2i+1] & 0xFFFF0000 are both exact f32 values. So each
// 64-byte weight load becomes two f32 vectors with two in-lane integer ops
// (no cross-lane widening), multiplied by x split the same way: per 32-column
// block, the 16 even-indexed then the 16 odd-indexed activations (xs).
// This keeps the core's work per weight byte low enough to stream a row at
// the full read bandwidth (the widening kernel, DotRow, measured 78-84% of it
// with memory at ~55 GB/s: docs/PERFORMANCE.md). Rows longer than
// kT1LongCols go two at a time (x no longer stays in L1 next to the stream).
constexpr int64_t kSplitBlock = 32;

// xs[b * 32 + i] = x[b * 32 + 2i], xs[b * 32 + 16 + i] = x[b * 32 + 2i + 1]
// for every whole 32-column block b.
void SplitEvenOdd(const float* x, int64_t blocks, float* xs) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 lo = _mm512_loadu_ps(x + b * kSplitBlock);
    const __m512 hi = _mm512_loadu_ps(x + b * kSplitBlock + 16);
    _mm512_storeu_ps(xs + b * kSplitBlock, _mm512_permutex2var_ps(lo, even, hi));
    _mm512_storeu_ps(xs + b * kSplitBlock + 16, _mm512_permutex2var_ps(lo, odd, hi));
  }
}

// R rows from w (stride ldw) against xs / x, U blocks per step; y[r] = dot +
// bias[r]. kPrefetch: the rows kPrefetchBlocks blocks ahead are prefetched
// into L2 (the hardware prefetcher does poorly on R > 1 interleaved row
// streams). One row needs U = 2 (4 accumulator chains, 128 bytes per step)
// to keep enough loads in flight.
template <int R, int U, bool kPrefetch>
void SplitBlockT1(const uint16_t* w, int64_t ldw, int64_t cols, const float* xs, const float* x,
                  float* y, const float* bias) {
  const __m512i hi_mask = _mm512_set1_epi32(int32_t(0xFFFF0000u));
  const int64_t blocks = cols / kSplitBlock;
  const uint16_t* pf = w + kPrefetchBlocks * R * ldw;
  __m512 ae[R][U], ao[R][U];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) ae[r][u] = ao[r][u] = _mm512_setzero_ps();
  auto step = [&](int64_t b, int u) __attribute__((always_inline)) {
    const __m512 xe = _mm512_loadu_ps(xs + b * kSplitBlock);
    const __m512 xo = _mm512_loadu_ps(xs + b * kSplitBlock + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      if constexpr (kPrefetch)
        _mm_prefetch(reinterpret_cast<const char*>(pf + r * ldw + b * kSplitBlock), _MM_HINT_T1);
      const __m512i wv = _mm512_loadu_si512(w + r * ldw + b * kSplitBlock);
      ae[r][u] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(wv, 16)), xe, ae[r][u]);
      ao[r][u] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(wv, hi_mask)), xo, ao[r][u]);
    }
  };
  int64_t b = 0;
  for (; b + U <= blocks; b += U)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) step(b + u, u);
  for (; b < blocks; ++b) step(b, 0);
  for (int64_t c = blocks * kSplitBlock; c < cols; c += 16) {
    const __mmask16 m = Mask16(cols - c);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      ae[r][0] = _mm512_fmadd_ps(LoadBf16AsF32(w + r * ldw + c, m), xv, ae[r][0]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int u = 1; u < U; ++u) {
      ae[r][0] = _mm512_add_ps(ae[r][0], ae[r][u]);
      ao[r][0] = _mm512_add_ps(ao[r][0], ao[r][u]);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(ae[r][0], ao[r][0])) + (bias ? bias[r] : 0.f);
  }
}

// y[r] = W[r, :] . x + bias[r] for r in [r0, r1); xs: SplitBytes(cols) bytes.
void SplitRowsT1(const uint16_t* W, int64_t cols, int64_t r0, int64_t r1, const float* x,
                 float* y, const float* bias, float* xs /* [blocks, 2, 16] */) {
  const int64_t blocks = cols / kSplitBlock;
  SplitEvenOdd(x, blocks, xs);
  int64_t r = r0;
  if (cols > kT1LongCols) {
    for (; r + 2 <= r1; r += 2)
      SplitBlockT1<2, 1, true>(W + r * cols, cols, cols, xs, x, y + r, bias ? bias + r : nullptr);
  }
  for (; r < r1; ++r)
    SplitBlockT1<1, 2, false>(W + r * cols, cols, cols, xs, x, y + r, bias ? bias + r : nullptr);
}

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias, uint8_t* work) {
  const uint16_t* W = static_cast<const uint16_t*>(wv);
  if (T == 1) return SplitRowsT1(W, cols, r0, r1, x, y, bias, reinterpret_cast<float*>(work));
  DotRows(W, cols, r0, r1, x, T, y, ldy, bias);
}

}  // namespace

// The even/odd split copy of x for T = 1.
size_t SplitBytes(int64_t cols) { return size_t(cols / kSplitBlock * kSplitBlock) * sizeof(float); }

}  // namespace avx512
#pragma GCC pop_options

// ---- fast mode (MatMulPrecision::kFast): a packed GEMM on vdpbf16ps.
// A 4-byte unit is a pair of bf16 (columns 2u, 2u+1). Weights are packed per
// (32-row panel, K block) with the rows in the lanes: one 64-byte load holds
// one unit of 16 rows. Activations are rounded to bf16 pairs and packed per
// 12-token panel; each pair is broadcast against two weight vectors, so the
// micro-kernel issues 24 vdpbf16ps per 2 weight loads and 12 broadcasts
// (the c-in-lanes dot kernels needed a load per 2.4 products and horizontal
// sums, and reached 70% of the bf16 peak; docs/PERFORMANCE.md).
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
namespace avx512bf16 {
namespace {

using avx512::Mask16;
using avx512::Mask32;

constexpr int kMr = 32;  // rows per panel: two zmm of 16 lanes
constexpr int kNr = 12;  // tokens per panel: 24 accumulators

// 16 x 16 transpose of 32-bit units: v[i][j] -> v[j][i].
inline void Transpose16(__m512i v[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // v[4a + b] now holds, in 128-bit lane q, units (rows 4q..4q+3) of column
  // unit 4*? ; two 128-bit shuffles finish the transpose.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    v[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    v[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// dst[u * 32 + i] = unit (r0 + i, u) of W's columns [c0, c0 + k), 0 outside.
void PackW(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dstv) {
  const uint16_t* W = static_cast<const uint16_t*>(wv) + r0 * ldw + c0;
  uint32_t* dst = static_cast<uint32_t*>(dstv);
  const int units = (k + 1) / 2;
  for (int h = 0; h < kMr / 16; ++h) {
    for (int u0 = 0; u0 < units; u0 += 16) {
      const __mmask32 cm = Mask32(k - 2 * u0);
      __m512i v[16];
      for (int i = 0; i < 16; ++i) {
        const int row = 16 * h + i;
        v[i] = row < m ? _mm512_maskz_loadu_epi16(cm, W + row * ldw + 2 * u0) : _mm512_setzero_si512();
      }
      Transpose16(v);
      const int n = std::min(16, units - u0);
      for (int j = 0; j < n; ++j) _mm512_store_si512(dst + (u0 + j) * kMr + 16 * h, v[j]);
    }
  }
}

// Part `part` of `parts` of the cache lines PackW will read for rows
// [r0, r0 + m), prefetched into L2 while the micro-kernels run on the panel
// before: 32 strided row streams are more than the hardware prefetcher
// follows, and packing them cold took ~13% of a 2560 x 2560 x 128-token
// product (bench_matmul).
void PrefetchW(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, int part, int parts) {
  const char* W = reinterpret_cast<const char*>(static_cast<const uint16_t*>(wv) + r0 * ldw + c0);
  const int lines_per_row = (2 * k + 63) / 64, lines = m * lines_per_row;
  for (int l = lines * part / parts; l < lines * (part + 1) / parts; ++l)
    _mm_prefetch(W + (l / lines_per_row) * ldw * 2 + (l % lines_per_row) * 64, _MM_HINT_T1);
}

// dst[u * 12 + j] = x[t0 + j, c0 + 2u .. 2u + 1] as a bf16 pair (nearest even).
void PackX(const float* x, int64_t ldx, int64_t t0, int n, int64_t c0, int k, void* dstv) {
  uint32_t* dst = static_cast<uint32_t*>(dstv);
  alignas(64) uint32_t pairs[16];
  for (int j = 0; j < n; ++j) {
    const float* src = x + (t0 + j) * ldx + c0;
    for (int c = 0; c < k; c += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(Mask16(k - c), src + c);
      const __m512 hi = _mm512_maskz_loadu_ps(Mask16(k - c - 16), src + c + 16);
      _mm512_store_si512(pairs, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      const int n_units = std::min(16, (k - c + 1) / 2);
      for (int q = 0; q < n_units; ++q) dst[(c / 2 + q) * kNr + j] = pairs[q];
    }
  }
}

template <int N>
void Tile(const uint32_t* wp, const uint32_t* xp, int units, int m, float* y, int64_t ldy,
          const float* bias, bool accumulate) {
  const __mmask16 m0 = Mask16(m), m1 = Mask16(m - 16);
  __m512 a0[N], a1[N];
  if (accumulate) {
#pragma GCC unroll 12
    for (int t = 0; t < N; ++t) {
      a0[t] = _mm512_maskz_loadu_ps(m0, y + t * ldy);
      a1[t] = _mm512_maskz_loadu_ps(m1, y + t * ldy + 16);
    }
  } else {
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int t = 0; t < N; ++t) a0[t] = b0, a1[t] = b1;
  }
  for (int u = 0; u < units; ++u, wp += kMr, xp += kNr) {
    const __m512bh w0 = (__m512bh)_mm512_load_si512(wp);
    const __m512bh w1 = (__m512bh)_mm512_load_si512(wp + 16);
#pragma GCC unroll 12
    for (int t = 0; t < N; ++t) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int32_t(xp[t]));
      a0[t] = _mm512_dpbf16_ps(a0[t], w0, b);
      a1[t] = _mm512_dpbf16_ps(a1[t], w1, b);
    }
  }
#pragma GCC unroll 12
  for (int t = 0; t < N; ++t) {
    _mm512_mask_storeu_ps(y + t * ldy, m0, a0[t]);
    _mm512_mask_storeu_ps(y + t * ldy + 16, m1, a1[t]);
  }
}

void Kernel(const void* wpv, const void* xpv, int units, int m, int n, float* y, int64_t ldy,
            const float* bias, bool accumulate) {
  const uint32_t* wp = static_cast<const uint32_t*>(wpv);
  const uint32_t* xp = static_cast<const uint32_t*>(xpv);
  static_assert(kNr == 12, "update the switch");
#define RG_CASE(N) \
  case N: return Tile<N>(wp, xp, units, m, y, ldy, bias, accumulate);
  switch (n) {
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5) RG_CASE(6)
    RG_CASE(7) RG_CASE(8) RG_CASE(9) RG_CASE(10) RG_CASE(11) RG_CASE(12)
  }
#undef RG_CASE
}

}  // namespace

// K blocks of 384 columns: the packed weight panel (24 KiB) stays in L1
// while every token panel passes over it; 144-token blocks keep the packed
// activations (216 KiB) in L2.
const GemmSpec kGemmFast = {kMr, kNr, 2, 384, 12 * kNr, PackW, PackX, Kernel, PrefetchW};

}  // namespace avx512bf16
#pragma GCC pop_options

FormatKernels Bf16KernelsAvx512(bool has_avx512bf16) {
  FormatKernels k;
  k.skinny = avx512::Skinny;
  k.skinny_bytes = avx512::SplitBytes;
  if (has_avx512bf16) {
    k.gemm_fast = &avx512bf16::kGemmFast;
    // Below this the weight stream, not the arithmetic, bounds both kernels
    // and the exact one streams better (measured 7680x2560: T=8 exact 110,
    // fast 110 GFLOP/s; T=12 113 vs 142; T=16 113 vs 156, one core).
    k.fast_min_t = 12;
  }
  return k;
}

// ================================================================= AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
namespace {

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias, uint8_t*) {
  SkinnyRows(static_cast<const uint16_t*>(wv), cols, r0, r1, x, T, y, ldy, bias);
}

void PackWExact(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dstv) {
  constexpr int kMr = 16;
  const uint16_t* W = static_cast<const uint16_t*>(wv) + r0 * ldw + c0;
  float* dst = static_cast<float*>(dstv);
  for (int h = 0; h < kMr / 8; ++h) {
    const int rows = std::clamp(m - 8 * h, 0, 8);
    for (int c = 0; c < k; c += 8) {
      const int kk = std::min(8, k - c);
      __m256 v[8];
      for (int i = 0; i < 8; ++i) {
        const uint16_t* p = W + (8 * h + i) * ldw + c;
        v[i] = i >= rows ? _mm256_setzero_ps()
               : kk == 8 ? LoadBf16AsF32(p)
                         : LoadBf16AsF32Partial(p, kk);
      }
      Transpose8x8(v);
      for (int j = 0; j < kk; ++j) _mm256_store_ps(dst + (c + j) * kMr + 8 * h, v[j]);
    }
  }
}

}  // namespace
}  // namespace avx2
#pragma GCC pop_options

FormatKernels Bf16KernelsAvx2() {
  static const GemmSpec exact = [] {
    GemmSpec s = *F32KernelsAvx2().gemm;
    s.pack_w = avx2::PackWExact;
    return s;
  }();
  FormatKernels k;
  k.skinny = avx2::Skinny;
  k.gemm = &exact;
  k.gemm_min_t = kAvx2GemmMinT;
  return k;
}

}  // namespace rg::mm
