// Internal SIMD code shared by matmul_f32.cc and matmul_bf16.cc: masks,
// conversions, horizontal sums, and the dot-product ("skinny") kernels that
// are templates over the weight element type. Each group is compiled for its
// target via #pragma GCC target; include this header after all standard
// headers. Not for use outside ops/.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

// ---------------------------------------------------------------- AVX-512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
namespace rg::mm::avx512 {

inline __mmask16 Mask16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 Mask32(int64_t n) {
  return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
}

// 16 bf16 (unaligned, masked: lanes >= the mask count read as 0) to f32.
inline __m512 LoadBf16AsF32(const uint16_t* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __m512 LoadBf16AsF32(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Horizontal sums of 4 vectors -> lanes 0..3 of an xmm.
inline __m128 Reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // 512 -> 256
  const __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  const __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
  const __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
  const __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
  const __m256 ab = _mm256_hadd_ps(a8, b8);  // a01 a23 b01 b23 | a45 a67 b45 b67
  const __m256 cd = _mm256_hadd_ps(c8, d8);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);  // a b c d (low half) | a b c d (high half)
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// ---- Dot-product kernels, generic over the weight element (float / bf16).
//
// The column (input feature) index is in the vector lanes; every weight and
// activation row is read in place (nothing is packed), and horizontal sums
// finish each output.
//   T = 1: one weight row at a time, read as one sequential stream with U = 4
//     accumulators (one sequential stream per core reaches the full read
//     bandwidth; several interleaved row streams per core do not). Long rows
//     are the exception (see DotRows).
//   T >= 2: blocks of R rows x up to 6 tokens (R x 6 accumulators): each
//     weight vector loaded serves 6 tokens and each activation vector R rows.
//     The first token group of a block streams the weights from memory and
//     prefetches the rows kPrefetchBlocks blocks ahead into L2 (the hardware
//     prefetcher does poorly on R interleaved streams); the other token groups
//     find the block in L1/L2.
//   Large T x cols: token blocks whose activations stay in L2 (kXBlockBytes),
//     and long rows cut into column chunks, partial sums added into y.
inline __m512 LoadW(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 LoadW(const uint16_t* p) { return LoadBf16AsF32(p); }
inline __m512 LoadW(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 LoadW(const uint16_t* p, __mmask16 m) { return LoadBf16AsF32(p, m); }

constexpr int kPrefetchBlocks = 2;
constexpr int64_t kXBlockBytes = 768 * 1024;  // activations of a token block (L2 of 1 MiB)
constexpr int64_t kMaxChunk = 2560;           // columns, when chunking is needed
// The L1 chunks of the exact kernels (R = 4 rows of bf16 / f32 weights and 6
// tokens of f32 activations: 20-25 KB of the 48 KB L1 at 640 columns), from
// kExactL1MinT tokens on. Measured on Zen 5, 2 threads, GFLOP/s without ->
// with (bench_matmul prefill --formats=bf16,f32, alternated twice):
//   bf16 T = 128: 2560x7680 338 -> 392-398, 7680x2560 367-369 -> 397-402,
//     2560x2560 382-395 -> 430-434 (1280 columns: 359-363, 412-417, 437-439)
//   f32 weights, 7680x2560 T = 48: 294-302 -> 383-385.
// Fewer tokens (batched decode) keep whole rows: there the weights stream
// from DRAM, and cut into chunks they stream slower (f32 weights at T = 4 /
// 6: 88-102 -> 72-75 / 105-112 -> 88-90; 2B bf16 `rgemma bench --batch 8`,
// twice at the same read bandwidth: 43.0 / 44.0 -> 40.1 / 39.8 tok/s). At 16
// streams the arithmetic dominates (--batch 16: 61.4 / 62.3 -> 66.5 / 66.4).
constexpr int64_t kExactL1Cols = 640;
constexpr int64_t kExactL1MinT = 16;

// One row x TT tokens over k columns. y[t * ldy] = init + dot, init = y (if
// accumulate) or bias.
template <int TT, int U, class WT>
void DotRow(const WT* w, int64_t k, const float* x, int64_t ldx, float* y, int64_t ldy,
            float bias, bool accumulate) {
  __m512 acc[TT][U];
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[t][u] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 * U <= k; c += 16 * U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m512 wv = LoadW(w + c + 16 * u);
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t)
        acc[t][u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + c + 16 * u), acc[t][u]);
    }
  }
  for (; c < k; c += 16) {
    const __mmask16 m = Mask16(k - c);
    const __m512 wv = LoadW(w + c, m);
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * ldx + c), acc[t][0]);
  }
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) acc[t][0] = _mm512_add_ps(acc[t][0], acc[t][u]);
    y[t * ldy] = _mm512_reduce_add_ps(acc[t][0]) + (accumulate ? y[t * ldy] : bias);
  }
}

// The end of an R-row x TT-token block kernel: y[t * ldy + r] = init + the
// lanes of acc[r][t] summed, init = y (if accumulate) or bias[r] (or 0).
template <int R, int TT>
inline void StoreBlock(__m512 (&acc)[R][TT], float* y, int64_t ldy, const float* bias, bool accumulate) {
  if constexpr (R == 4) {
    const __m128 b = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      const __m128 init = accumulate ? _mm_loadu_ps(y + t * ldy) : b;
      _mm_storeu_ps(y + t * ldy,
                    _mm_add_ps(Reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), init));
    }
  } else {
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) +
                         (accumulate ? y[t * ldy + r] : bias ? bias[r] : 0.f);
  }
}

// R rows (w, stride ldw) x TT tokens over k columns; init as DotRow (bias
// holds R values or is null).
template <int R, int TT, bool kPrefetch, class WT>
void DotBlock(const WT* w, int64_t ldw, int64_t k, const float* x, int64_t ldx, float* y,
              int64_t ldy, const float* bias, bool accumulate) {
  constexpr int kLineCols = 64 / sizeof(WT);
  const WT* pf = w + kPrefetchBlocks * R * ldw;
  __m512 acc[R][TT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= k; c += 16) {
    if constexpr (kPrefetch) {
      if (kLineCols == 16 || (c & (kLineCols - 1)) == 0) {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(pf + r * ldw + c), _MM_HINT_T1);
      }
    }
    __m512 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_loadu_ps(x + t * ldx + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 wv = LoadW(w + r * ldw + c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  if (c < k) {
    const __mmask16 m = Mask16(k - c);
    __m512 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 wv = LoadW(w + r * ldw + c, m);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  StoreBlock<R, TT>(acc, y, ldy, bias, accumulate);
}

template <int R, bool kPrefetch, class WT>
void DotBlockGroup(int n, const WT* w, int64_t ldw, int64_t k, const float* x, int64_t ldx,
                   float* y, int64_t ldy, const float* bias, bool accumulate) {
#define RG_CASE(N) \
  case N: DotBlock<R, N, kPrefetch>(w, ldw, k, x, ldx, y, ldy, bias, accumulate); break;
  switch (n) {
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5)
    default: DotBlock<R, 6, kPrefetch>(w, ldw, k, x, ldx, y, ldy, bias, accumulate); break;
  }
#undef RG_CASE
}

template <class WT>
void DotRowGroup(int n, const WT* w, int64_t k, const float* x, int64_t ldx, float* y,
                 int64_t ldy, float bias, bool accumulate) {
  switch (n) {
    case 1: DotRow<1, 4>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 2: DotRow<2, 2>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 3: DotRow<3, 2>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 4: DotRow<4, 1>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 5: DotRow<5, 1>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 6: DotRow<6, 1>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    case 7: DotRow<7, 1>(w, k, x, ldx, y, ldy, bias, accumulate); break;
    default: DotRow<8, 1>(w, k, x, ldx, y, ldy, bias, accumulate); break;
  }
}

// Splits n into balanced groups of at most max_group.
inline int GroupSize(int64_t left, int max_group) {
  const int64_t groups = (left + max_group - 1) / max_group;
  return int((left + groups - 1) / groups);
}

// The blocking of the c-in-lanes kernels for large T x cols, shared by the
// exact ones (f32 activations read in place) and bf16 fast mode
// (matmul_bf16.cc: activations converted to bf16 per block). Column chunks
// of at most l1_cols (when the caller gives them), so that a block's R weight
// rows stay in L1 while the token groups' activations stream past them from
// L2; and when the activations of one token group would not stay in L2
// otherwise, chunks of at most kMaxChunk, then token blocks sized to the L2
// budget. Within a block: rows in groups of R, tokens in groups of at most 6.
//   act_bytes       bytes per activation as the kernels read it
//   col_align       chunk widths are multiples of this
//   l1_cols         the L1 chunk width of the kernel (0: none)
//   ld_of(kc)       row stride of a prepared block of kc columns
//   prepare(t0, nt, c0, k, ld) -> the block of tokens [t0, t0 + nt) x
//                   columns [c0, c0 + k), row stride ld
//   block(n, first, r, c0, k, xb, ld, yb, accumulate): rows [r, r + R) x
//                   n tokens (first: the token group that streams the weights)
//   row(r, c0, k, xb, ld, nt, yb, accumulate): row r x all nt tokens
// yb points at y's row of the block's first token; accumulate: c0 > 0.
template <int R, class Act, class LdOf, class Prepare, class Block, class Row>
void BlockedRows(int64_t cols, int64_t r0, int64_t r1, int64_t T, int64_t act_bytes, int64_t col_align,
                 int64_t l1_cols, float* y, int64_t ldy, LdOf&& ld_of, Prepare&& prepare, Block&& block,
                 Row&& row) {
  int64_t max_kc = cols;
  if (T * cols * act_bytes > kXBlockBytes) max_kc = kMaxChunk;
  if (l1_cols > 0) max_kc = std::min(max_kc, l1_cols);
  int64_t kc = cols;
  if (cols > max_kc) {
    const int64_t chunks = (cols + max_kc - 1) / max_kc;
    kc = ((cols + chunks - 1) / chunks + col_align - 1) / col_align * col_align;
  }
  const int64_t ld = ld_of(kc);
  int64_t tb = T;
  if (T * ld * act_bytes > kXBlockBytes) tb = std::max<int64_t>(6, kXBlockBytes / (ld * act_bytes) / 6 * 6);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t nt = std::min(tb, T - t0);
    for (int64_t c0 = 0; c0 < cols; c0 += kc) {
      const int64_t k = std::min(kc, cols - c0);
      const bool acc = c0 > 0;
      const Act* xb = prepare(t0, nt, c0, k, ld);
      float* yb = y + t0 * ldy;
      int64_t r = r0;
      for (; r + R <= r1; r += R)
        for (int64_t t = 0; t < nt;) {
          const int n = GroupSize(nt - t, 6);
          block(n, t == 0, r, c0, k, xb + t * ld, ld, yb + t * ldy, acc);
          t += n;
        }
      for (; r < r1; ++r) row(r, c0, k, xb, ld, nt, yb, acc);
    }
  }
}

template <int R, class WT>
void DotRowsBlocked(const WT* W, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
                    float* y, int64_t ldy, const float* bias) {
  BlockedRows<R, float>(
      cols, r0, r1, T, sizeof(float), 16, T >= kExactL1MinT ? kExactL1Cols : 0, y, ldy,
      [&](int64_t) { return cols; },
      [&](int64_t t0, int64_t, int64_t c0, int64_t, int64_t) { return x + t0 * cols + c0; },
      [&](int n, bool first, int64_t r, int64_t c0, int64_t k, const float* xb, int64_t ld, float* yb, bool acc) {
        const WT* w = W + r * cols + c0;
        const float* b = bias ? bias + r : nullptr;
        if (first) DotBlockGroup<R, true>(n, w, cols, k, xb, ld, yb + r, ldy, b, acc);
        else DotBlockGroup<R, false>(n, w, cols, k, xb, ld, yb + r, ldy, b, acc);
      },
      [&](int64_t r, int64_t c0, int64_t k, const float* xb, int64_t ld, int64_t nt, float* yb, bool acc) {
        const WT* w = W + r * cols + c0;
        const float b = bias ? bias[r] : 0.f;
        for (int64_t t = 0; t < nt;) {
          const int n = GroupSize(nt - t, 8);
          DotRowGroup(n, w, k, xb + t * ld, ld, yb + t * ldy + r, ldy, b, acc);
          t += n;
        }
      });
}

// Rows [r0, r1), all T tokens: y[t * ldy + r] = W[r, :] . x[t, :] + bias[r].
// Measured choices (one core, share of the plain read bandwidth):
//  * Small T does better with 2 rows per block: f32 up to T = 6, bf16 at T = 2
//    (4 rows from T = 3: 7680x2560 bf16 T=3 75% vs 55%).
//  * At T = 1 a row of more than kT1LongCols columns makes x (> 16 KiB) miss
//    L1 next to the weight stream (2560x7680 bf16: 43% one row at a time), so
//    such rows take the blocked path (x loaded once per R rows, weights
//    prefetched): f32 best with 4 rows (~90%), bf16 with 2 (~75-85%).
//    (The AVX-512 bf16 kernels use their own T = 1 kernel, matmul_bf16.cc.)
constexpr int64_t kF32PairMaxT = 6;
constexpr int64_t kBf16PairMaxT = 2;
constexpr int64_t kT1LongCols = 4096;

template <class WT>
void DotRows(const WT* W, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
             float* y, int64_t ldy, const float* bias) {
  if (T == 1 && cols > kT1LongCols) {
    DotRowsBlocked<sizeof(WT) == 4 ? 4 : 2>(W, cols, r0, r1, x, T, y, ldy, bias);
  } else if (T == 1) {
    for (int64_t r = r0; r < r1; ++r)
      DotRow<1, 4>(W + r * cols, cols, x, cols, y + r, ldy, bias ? bias[r] : 0.f, false);
  } else if (T <= (sizeof(WT) == 4 ? kF32PairMaxT : kBf16PairMaxT)) {
    DotRowsBlocked<2>(W, cols, r0, r1, x, T, y, ldy, bias);
  } else {
    DotRowsBlocked<4>(W, cols, r0, r1, x, T, y, ldy, bias);
  }
}

}  // namespace rg::mm::avx512
#pragma GCC pop_options

// ---------------------------------------------------------------- AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace rg::mm::avx2 {

// Integer mask vector selecting the first n (0..8) lanes, for maskload/maskstore.
inline __m256i Mask8(int64_t n) {
  alignas(32) static const int32_t kTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                 0,  0,  0,  0,  0,  0,  0,  0};
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTable + 8 - n));
}

inline __m256 LoadBf16AsF32(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
// First n (< 8) bf16 of p, the rest 0; reads only p[0 .. n).
inline __m256 LoadBf16AsF32Partial(const uint16_t* p, int64_t n) {
  alignas(16) uint16_t tmp[8] = {};
  for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
  return LoadBf16AsF32(tmp);
}

inline void Transpose8x8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 2]);
    const __m256d c = _mm256_castps_pd(t[4 * g + 1]), d = _mm256_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, b));
    u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, b));
    u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(c, d));
    u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(c, d));
  }
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    v[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

inline __m128 Reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b);
  const __m256 cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
inline float Reduce1(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- Skinny (decode) kernels, as the AVX-512 ones (see there); 4 rows x up
// to 2 tokens per block (16 ymm registers).
inline __m256 LoadW(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 LoadW(const uint16_t* p) { return LoadBf16AsF32(p); }
inline __m256 LoadWPartial(const float* p, int64_t n) { return _mm256_maskload_ps(p, Mask8(n)); }
inline __m256 LoadWPartial(const uint16_t* p, int64_t n) { return LoadBf16AsF32Partial(p, n); }

constexpr int64_t kPrefetchBytes = 48 * 1024;

template <int TT, int U, class WT>
void SkinnyRow(const WT* w, int64_t cols, const float* x, float* y, int64_t ldy, float bias) {
  __m256 acc[TT][U];
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[t][u] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 * U <= cols; c += 8 * U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m256 wv = LoadW(w + c + 8 * u);
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t)
        acc[t][u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * cols + c + 8 * u), acc[t][u]);
    }
  }
  for (; c + 8 <= cols; c += 8) {
    const __m256 wv = LoadW(w + c);
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * cols + c), acc[t][0]);
  }
  if (c < cols) {
    const __m256i m = Mask8(cols - c);
    const __m256 wv = LoadWPartial(w + c, cols - c);
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + t * cols + c, m), acc[t][0]);
  }
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) acc[t][0] = _mm256_add_ps(acc[t][0], acc[t][u]);
    y[t * ldy] = Reduce1(acc[t][0]) + bias;
  }
}

template <int TT, bool kPrefetch, class WT>
void SkinnyBlock4(const WT* w, int64_t cols, const float* x, float* y, int64_t ldy,
                  const float* bias) {
  constexpr int R = 4;
  constexpr int64_t kStep = R * 8 * sizeof(WT);
  const char* pf = reinterpret_cast<const char*>(w) + kPrefetchBytes;
  __m256 acc[R][TT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    if constexpr (kPrefetch) {
      if ((c & 15) == 0) {  // one 64-byte line per row-step pair
#pragma GCC unroll 4
        for (int64_t l = 0; l < 2 * kStep; l += 64) _mm_prefetch(pf + l, _MM_HINT_T1);
        pf += 2 * kStep;
      }
    }
    __m256 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm256_loadu_ps(x + t * cols + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 wv = LoadW(w + r * cols + c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  if (c < cols) {
    const __m256i m = Mask8(cols - c);
    __m256 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm256_maskload_ps(x + t * cols + c, m);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 wv = LoadWPartial(w + r * cols + c, cols - c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  const __m128 b = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
#pragma GCC unroll 8
  for (int t = 0; t < TT; ++t)
    _mm_storeu_ps(y + t * ldy, _mm_add_ps(Reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), b));
}

inline int GroupSize(int64_t left, int max_group) {
  const int64_t groups = (left + max_group - 1) / max_group;
  return int((left + groups - 1) / groups);
}

template <class WT>
void SkinnyRows(const WT* W, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
                float* y, int64_t ldy, const float* bias) {
  int64_t r = r0;
  if (T >= 2) {
    for (; r + 4 <= r1; r += 4) {
      const WT* w = W + r * cols;
      const float* b = bias ? bias + r : nullptr;
      for (int64_t t = 0; t < T;) {
        const int n = GroupSize(T - t, 2);
        const float* xt = x + t * cols;
        float* yt = y + t * ldy + r;
        if (t == 0) {
          if (n == 1) SkinnyBlock4<1, true>(w, cols, xt, yt, ldy, b);
          else SkinnyBlock4<2, true>(w, cols, xt, yt, ldy, b);
        } else {
          if (n == 1) SkinnyBlock4<1, false>(w, cols, xt, yt, ldy, b);
          else SkinnyBlock4<2, false>(w, cols, xt, yt, ldy, b);
        }
        t += n;
      }
    }
  }
  for (; r < r1; ++r) {
    const WT* w = W + r * cols;
    const float b = bias ? bias[r] : 0.f;
    for (int64_t t = 0; t < T;) {
      const int n = GroupSize(T - t, 6);
      const float* xt = x + t * cols;
      float* yt = y + t * ldy + r;
      switch (n) {
        case 1: SkinnyRow<1, 4>(w, cols, xt, yt, ldy, b); break;
        case 2: SkinnyRow<2, 2>(w, cols, xt, yt, ldy, b); break;
        case 3: SkinnyRow<3, 2>(w, cols, xt, yt, ldy, b); break;
        case 4: SkinnyRow<4, 1>(w, cols, xt, yt, ldy, b); break;
        case 5: SkinnyRow<5, 1>(w, cols, xt, yt, ldy, b); break;
        default: SkinnyRow<6, 1>(w, cols, xt, yt, ldy, b); break;
      }
      t += n;
    }
  }
}

}  // namespace rg::mm::avx2
#pragma GCC pop_options
