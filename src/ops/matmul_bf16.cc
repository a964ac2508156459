// BF16-weight kernels: scalar, AVX2 and AVX-512 (see matmul_kernels.h).
// Exact mode widens weights to f32 (a 16-bit shift) and multiplies-adds in
// f32; the AVX2 GEMM widens while packing and then shares the f32
// micro-kernel. Fast mode (AVX512_BF16) rounds activations to bf16 and uses
// vdpbf16ps on (weight pair, activation pair) with f32 accumulation.

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
size_t SplitBytes(int64_t cols, int64_t) { return size_t(cols / kSplitBlock * kSplitBlock) * sizeof(float); }

}  // namespace avx512
#pragma GCC pop_options

// ---- fast mode (MatMulPrecision::kFast): vdpbf16ps.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
namespace avx512bf16 {
namespace {

using avx512::Mask16;
using avx512::Mask32;
// ---- c-in-lanes fast kernel: 32 columns per step, vdpbf16ps on (weight pair,
// activation pair); activations are converted to bf16 per token block into
// the thread's work memory.
template <int R, int TT, bool kPrefetch>
void FastBlock(const uint16_t* w, int64_t ldw, int64_t k, const uint16_t* x, int64_t ldx,
               float* y, int64_t ldy, const float* bias, bool accumulate) {
  const uint16_t* pf = w + avx512::kPrefetchBlocks * R * ldw;
  __m512 acc[R][TT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= k; c += 32) {
    if constexpr (kPrefetch) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(pf + r * ldw + c), _MM_HINT_T1);
    }
    __m512bh xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = (__m512bh)_mm512_loadu_si512(x + t * ldx + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + r * ldw + c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
    }
  }
  if (c < k) {
    const __mmask32 m = Mask32(k - c);
    __m512bh xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = (__m512bh)_mm512_maskz_loadu_epi16(m, x + t * ldx + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + r * ldw + c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
    }
  }
  avx512::StoreBlock<R, TT>(acc, y, ldy, bias, accumulate);
}

template <int R, bool kPrefetch>
void FastBlockGroup(int n, const uint16_t* w, int64_t ldw, int64_t k, const uint16_t* x,
                    int64_t ldx, float* y, int64_t ldy, const float* bias, bool accumulate) {
#define RG_CASE(N) \
  case N: FastBlock<R, N, kPrefetch>(w, ldw, k, x, ldx, y, ldy, bias, accumulate); break;
  switch (n) {
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5)
    default: FastBlock<R, 6, kPrefetch>(w, ldw, k, x, ldx, y, ldy, bias, accumulate); break;
  }
#undef RG_CASE
}

// x[t, c0 .. c0 + k) for nt tokens -> bf16 rows of stride ld (round to nearest even).
void ConvertToBf16(const float* x, int64_t ldx, int64_t nt, int64_t k, uint16_t* dst, int64_t ld) {
  for (int64_t t = 0; t < nt; ++t) {
    const float* src = x + t * ldx;
    uint16_t* d = dst + t * ld;
    for (int64_t c = 0; c < k; c += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(Mask16(k - c), src + c);
      const __m512 hi = _mm512_maskz_loadu_ps(Mask16(k - c - 16), src + c + 16);
      _mm512_mask_storeu_epi16(d + c, Mask32(k - c), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
}

// The L1 chunks of FastRows (BlockedRows): 4 weight rows and 6 tokens, both
// bf16, 38 KB of the 48 KB L1 at 1920 columns (2560 columns: two chunks of
// 1280). Measured on Zen 5 (bench_matmul prefill --formats=bf16fast
// --tokens=128, 2 threads), GFLOP/s without -> with: 2560x7680 683-692 ->
// 769-783, 7680x2560 717-728 -> 828-842, 2560x2560 754-773 -> 871-896.
constexpr int64_t kFastL1Cols = 1920;
// Below this many tokens (batched decode) fast mode keeps whole rows: the
// weights stream from DRAM at a rate close to the arithmetic's, and cut into
// chunks they stream slower (2B bf16, `rgemma bench -p 16 -n 32 --batch 16
// --precision fast`, alternated three times: 88.7 / 87.0 / 80.1 tok/s
// without chunks, 87.4 / 73.8 / 73.1 with).
constexpr int64_t kFastL1MinT = 32;

// Padded row stride of a bf16 block of kc columns.
int64_t BlockLd(int64_t kc) { return (kc + 31) / 32 * 32 + 32; }

void FastRows(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
              float* y, int64_t ldy, const float* bias, uint8_t* work) {
  const uint16_t* W = static_cast<const uint16_t*>(wv);
  uint16_t* xb = reinterpret_cast<uint16_t*>(work);  // [token block, ld] bf16 activations
  avx512::BlockedRows<4, uint16_t>(
      cols, r0, r1, T, 2, 32, T >= kFastL1MinT ? kFastL1Cols : 0, y, ldy, BlockLd,
      [&](int64_t t0, int64_t nt, int64_t c0, int64_t k, int64_t ld) {
        ConvertToBf16(x + t0 * cols + c0, cols, nt, k, xb, ld);
        return static_cast<const uint16_t*>(xb);
      },
      [&](int n, bool first, int64_t r, int64_t c0, int64_t k, const uint16_t* xt, int64_t ld, float* yb, bool acc) {
        const uint16_t* w = W + r * cols + c0;
        const float* b = bias ? bias + r : nullptr;
        if (first) FastBlockGroup<4, true>(n, w, cols, k, xt, ld, yb + r, ldy, b, acc);
        else FastBlockGroup<4, false>(n, w, cols, k, xt, ld, yb + r, ldy, b, acc);
      },
      [&](int64_t r, int64_t c0, int64_t k, const uint16_t* xt, int64_t ld, int64_t nt, float* yb, bool acc) {
        const uint16_t* w = W + r * cols + c0;
        const float* b = bias ? bias + r : nullptr;
        for (int64_t t = 0; t < nt;) {
          const int n = avx512::GroupSize(nt - t, 6);
          FastBlockGroup<1, false>(n, w, cols, k, xt + t * ld, ld, yb + t * ldy + r, ldy, b, acc);
          t += n;
        }
      });
}

}  // namespace

// FastRows' work memory: the largest bf16 block BlockedRows makes for
// (cols, T): all T rows when they fit the L2 budget, else a token block
// within it (at least 6 rows) of a chunk of at most kMaxChunk + 31 columns.
// L1 chunks (kFastL1Cols) only make a block narrower, so this bounds them too.
size_t FastRowsBytes(int64_t cols, int64_t T) {
  const int64_t budget = avx512::kXBlockBytes;
  const bool chunked = T * cols * 2 > budget && cols > avx512::kMaxChunk;
  const int64_t ld = BlockLd(chunked ? avx512::kMaxChunk + 31 : cols);
  if (T * ld * 2 <= budget) return size_t(T * ld) * 2;
  return size_t(std::max(budget, 6 * ld * 2));
}

}  // namespace avx512bf16
#pragma GCC pop_options

FormatKernels Bf16KernelsAvx512(bool has_avx512bf16) {
  FormatKernels k;
  k.skinny = avx512::Skinny;
  k.skinny_bytes = avx512::SplitBytes;
  if (has_avx512bf16) {
    k.skinny_fast = avx512bf16::FastRows;
    k.skinny_fast_bytes = avx512bf16::FastRowsBytes;
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
