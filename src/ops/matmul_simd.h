// Internal SIMD helpers shared by matmul_f32.cc and matmul_bf16.cc: masks,
// register transposes and horizontal sums. Each group is compiled for its
// target via #pragma GCC target; include this header after all standard
// headers. Not for use outside ops/.
#pragma once

#include <immintrin.h>

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

inline __m512 UnpackLoPd(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
inline __m512 UnpackHiPd(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

// In place: v[i] lane j  ->  v[j] lane i (32-bit elements).
inline void Transpose16x16(__m512 v[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  // u[4g + j]: in 128-bit lane k, rows 4g..4g+3 of column 4k + j.
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = UnpackLoPd(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = UnpackHiPd(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = UnpackLoPd(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = UnpackHiPd(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 s0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44);
    const __m512 s1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
    const __m512 s2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
    const __m512 s3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    v[0 + j] = _mm512_shuffle_f32x4(s0, s2, 0x88);
    v[4 + j] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
    v[8 + j] = _mm512_shuffle_f32x4(s1, s3, 0x88);
    v[12 + j] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
  }
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

// ---- Skinny (decode) kernels, generic over the weight element (float / bf16).
//
// T = 1: one weight row at a time, read as one sequential stream with U = 4
// accumulators (a single stream per core reaches the full read bandwidth;
// interleaved row streams without help do not).
// T >= 2: blocks of R = 4 (bf16) or 2 (f32) rows x up to 6 tokens, so each
// weight vector is reused for all tokens of the group and each activation
// vector for R rows. The hardware prefetcher does poorly on R interleaved
// streams, so the block reads the weights kPrefetchBytes ahead of its linear
// progress into L2. Further token groups of the same rows find them in cache.
inline __m512 LoadW(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 LoadW(const uint16_t* p) { return LoadBf16AsF32(p); }
inline __m512 LoadW(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 LoadW(const uint16_t* p, __mmask16 m) { return LoadBf16AsF32(p, m); }

constexpr int64_t kPrefetchBytes = 48 * 1024;

template <int TT, int U, class WT>
void SkinnyRow(const WT* w, int64_t cols, const float* x, float* y, int64_t ldy, float bias) {
  __m512 acc[TT][U];
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[t][u] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 * U <= cols; c += 16 * U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m512 wv = LoadW(w + c + 16 * u);
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t)
        acc[t][u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * cols + c + 16 * u), acc[t][u]);
    }
  }
  for (; c < cols; c += 16) {
    const __mmask16 m = Mask16(cols - c);
    const __m512 wv = LoadW(w + c, m);
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * cols + c), acc[t][0]);
  }
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) {
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) acc[t][0] = _mm512_add_ps(acc[t][0], acc[t][u]);
    y[t * ldy] = _mm512_reduce_add_ps(acc[t][0]) + bias;
  }
}

// R rows (w, stride cols) x TT tokens.
template <int R, int TT, bool kPrefetch, class WT>
void SkinnyBlock(const WT* w, int64_t cols, const float* x, float* y, int64_t ldy,
                 const float* bias) {
  constexpr int64_t kStep = R * 16 * sizeof(WT);  // weight bytes per column step
  const char* pf = reinterpret_cast<const char*>(w) + kPrefetchBytes;
  __m512 acc[R][TT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    if constexpr (kPrefetch) {
#pragma GCC unroll 4
      for (int64_t l = 0; l < kStep; l += 64) _mm_prefetch(pf + l, _MM_HINT_T1);
      pf += kStep;
    }
    __m512 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_loadu_ps(x + t * cols + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 wv = LoadW(w + r * cols + c);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  if (c < cols) {
    const __mmask16 m = Mask16(cols - c);
    __m512 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x + t * cols + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 wv = LoadW(w + r * cols + c, m);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  if constexpr (R == 4) {
    const __m128 b = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t)
      _mm_storeu_ps(y + t * ldy,
                    _mm_add_ps(Reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), b));
  } else {
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + (bias ? bias[r] : 0.f);
  }
}

template <int R, bool kPrefetch, class WT>
void SkinnyBlockGroup(int n, const WT* w, int64_t cols, const float* x, float* y, int64_t ldy,
                      const float* bias) {
  switch (n) {
    case 1: SkinnyBlock<R, 1, kPrefetch>(w, cols, x, y, ldy, bias); break;
    case 2: SkinnyBlock<R, 2, kPrefetch>(w, cols, x, y, ldy, bias); break;
    case 3: SkinnyBlock<R, 3, kPrefetch>(w, cols, x, y, ldy, bias); break;
    case 4: SkinnyBlock<R, 4, kPrefetch>(w, cols, x, y, ldy, bias); break;
    case 5: SkinnyBlock<R, 5, kPrefetch>(w, cols, x, y, ldy, bias); break;
    default: SkinnyBlock<R, 6, kPrefetch>(w, cols, x, y, ldy, bias); break;
  }
}

// Rows per block for T >= 2 (measured: 4 for bf16; f32 rows are twice the
// bytes and 2 rows do better).
template <class WT>
constexpr int kSkinnyBlockRows = sizeof(WT) == 2 ? 4 : 4;

// Splits T into balanced groups of at most max_group.
inline int GroupSize(int64_t left, int max_group) {
  const int64_t groups = (left + max_group - 1) / max_group;
  return int((left + groups - 1) / groups);
}

// Rows [r0, r1), all T tokens: y[t * ldy + r].
template <class WT>
void SkinnyRows(const WT* W, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
                float* y, int64_t ldy, const float* bias) {
  constexpr int R = kSkinnyBlockRows<WT>;
  int64_t r = r0;
  if (T >= 2) {
    for (; r + R <= r1; r += R) {
      const WT* w = W + r * cols;
      const float* b = bias ? bias + r : nullptr;
      for (int64_t t = 0; t < T;) {
        const int n = GroupSize(T - t, 6);
        if (t == 0)
          SkinnyBlockGroup<R, true>(n, w, cols, x, y + r, ldy, b);
        else
          SkinnyBlockGroup<R, false>(n, w, cols, x + t * cols, y + t * ldy + r, ldy, b);
        t += n;
      }
    }
  }
  for (; r < r1; ++r) {
    const WT* w = W + r * cols;
    const float b = bias ? bias[r] : 0.f;
    for (int64_t t = 0; t < T;) {
      const int n = GroupSize(T - t, 8);
      const float* xt = x + t * cols;
      float* yt = y + t * ldy + r;
      switch (n) {
        case 1: SkinnyRow<1, 4>(w, cols, xt, yt, ldy, b); break;
        case 2: SkinnyRow<2, 2>(w, cols, xt, yt, ldy, b); break;
        case 3: SkinnyRow<3, 2>(w, cols, xt, yt, ldy, b); break;
        case 4: SkinnyRow<4, 1>(w, cols, xt, yt, ldy, b); break;
        case 5: SkinnyRow<5, 1>(w, cols, xt, yt, ldy, b); break;
        case 6: SkinnyRow<6, 1>(w, cols, xt, yt, ldy, b); break;
        case 7: SkinnyRow<7, 1>(w, cols, xt, yt, ldy, b); break;
        default: SkinnyRow<8, 1>(w, cols, xt, yt, ldy, b); break;
      }
      t += n;
    }
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
