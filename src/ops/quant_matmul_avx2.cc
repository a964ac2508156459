// AVX2 kernels for the quantized matmul (math in ops/quant_matmul.h,
// activation layout in ops/quant_kernels.h). int8 products use the maddubs
// sign trick: |x| (u8 <= 127) times w * sign(x) (s8, |w| <= 127), so the
// int16 pair sums (<= 2 * 127 * 127) never saturate.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/quant.h"
#include "ops/quant_kernels.h"

#define RG_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

// GCC 12 reports its own _mm*_undefined_* helpers as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rg::quant_internal {
namespace {

// One 4-column step: acc[t][h] += rows of half h times token t's 4 codes.
template <int N>
RG_TARGET_AVX2 inline void Step(__m256i (*acc)[2], const int32_t* xq, __m256i ones, int j,
                                __m256i w0, __m256i w1) {
  for (int t = 0; t < N; ++t) {
    const __m256i xb = _mm256_set1_epi32(xq[j * N + t]);
    const __m256i ax = _mm256_abs_epi8(xb);
    acc[t][0] = _mm256_add_epi32(
        acc[t][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xb)), ones));
    acc[t][1] = _mm256_add_epi32(
        acc[t][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xb)), ones));
  }
}

// 16 rows (one group, as two 8-row halves) x N tokens over all nb blocks of
// KB columns (block layout in ops/quant.h: header H, then the codes).
template <int N, bool Q4, int KB>
RG_TARGET_AVX2 void Micro(const uint8_t* wg, int64_t nb, const uint8_t* tile, float* y,
                          int64_t rows, int64_t r0, int valid, const float* bias) {
  constexpr int kHeader = KB == 32 ? 32 : 64;
  constexpr size_t kBB = kHeader + size_t(16) * KB * (Q4 ? 4 : 8) / 8;
  __m256 f[N][2];
  for (int t = 0; t < N; ++t) f[t][0] = f[t][1] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1), m0f = _mm256_set1_epi8(0x0f);
  alignas(16) int8_t lut_bytes[16];
  for (int k = 0; k < 16; ++k) lut_bytes[k] = kQ4Codebook[k];
  const __m256i lut =
      _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(lut_bytes)));

  const uint8_t* blk = wg;
  const uint8_t* rec = tile;
  for (int64_t b = 0; b < nb; ++b, blk += kBB, rec += ActRecordBytes(KB) * N) {
    const float* sx = reinterpret_cast<const float*>(rec + 4 * N);
    const int32_t* xq = reinterpret_cast<const int32_t*>(rec + 8 * N);
    const __m256 sw0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m256 sw1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
    __m256i acc[N][2];
    for (int t = 0; t < N; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
    if constexpr (!Q4) {
      for (int j = 0; j < KB / 4; ++j) {
        const uint8_t* p = blk + kHeader + 64 * j;
        Step<N>(acc, xq, ones, j, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
      }
    } else {
      for (int c = 0; c < KB / 8; ++c) {
        const uint8_t* p = blk + kHeader + 64 * c;
        const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
        Step<N>(acc, xq, ones, 2 * c, _mm256_shuffle_epi8(lut, _mm256_and_si256(p0, m0f)),
             _mm256_shuffle_epi8(lut, _mm256_and_si256(p1, m0f)));
        Step<N>(acc, xq, ones, 2 * c + 1, _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(p0, 4), m0f)),
             _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(p1, 4), m0f)));
      }
    }
    for (int t = 0; t < N; ++t) {
      const __m256 s = _mm256_set1_ps(sx[t]);
      f[t][0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[t][0]), sw0), s, f[t][0]);
      f[t][1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[t][1]), sw1), s, f[t][1]);
    }
  }
  for (int t = 0; t < N; ++t) {
    alignas(32) float out[16];
    _mm256_store_ps(out, f[t][0]);
    _mm256_store_ps(out + 8, f[t][1]);
    float* yt = y + t * rows + r0;
    if (bias)
      for (int i = 0; i < valid; ++i) yt[i] = out[i] + bias[r0 + i];
    else
      for (int i = 0; i < valid; ++i) yt[i] = out[i];
  }
}

template <bool Q4, int KB>
RG_TARGET_AVX2 void Kernel(const QuantKernelArgs& a, int64_t g0, int64_t g1) {
  static_assert(kNtAvx2 == 2, "update the dispatch");
  const int nt = a.nt;
  const size_t gbytes = size_t(a.nb) * ((KB == 32 ? 32 : 64) + size_t(16) * KB * (Q4 ? 4 : 8) / 8);
  const int64_t tiles = (a.T + nt - 1) / nt;
  // Group blocks as in the AVX-512 kernel: a few row groups' weights stay in
  // L2 while every token tile passes over them.
  const int64_t gb = std::max<int64_t>(1, int64_t((384u << 10) / std::max<size_t>(gbytes, 1)));
  for (int64_t gs = g0; gs < g1; gs += gb) {
    const int64_t ge = std::min(g1, gs + gb);
    for (int64_t k = 0; k < tiles; ++k) {
      const int n = int(std::min<int64_t>(nt, a.T - k * nt));
      const uint8_t* tile = ActTile(const_cast<uint8_t*>(a.acts), k, a.nb_acts, nt, KB);
      float* yk = a.y + k * nt * a.rows;
      for (int64_t g = gs; g < ge; ++g) {
        const uint8_t* wg = a.w + size_t(g) * gbytes;
        const int64_t r0 = g * 16;
        const int valid = int(std::min<int64_t>(16, a.rows - r0));
        const uint8_t* ts = tile + size_t(r0 / a.seg_rows * a.nb) * ActRecordBytes(KB) * n;
        if (n == 2) Micro<2, Q4, KB>(wg, a.nb, ts, yk, a.rows, r0, valid, a.bias);
        else Micro<1, Q4, KB>(wg, a.nb, ts, yk, a.rows, r0, valid, a.bias);
      }
    }
  }
}

}  // namespace

// Activation quantization for this kernel: the scalar definition, laid out in
// tiles (the AVX2 level is a fallback; this is not its bottleneck).
void QuantizeActsAvx2(const float* x, const ActSegments& seg, int64_t T, int nt, int64_t k0, int64_t k1,
                      uint8_t* acts) {
  const int kb = seg.kb;
  const int64_t nbs = seg.blocks(), nb = seg.records(), ld = seg.count * seg.cols;
  for (int64_t k = k0; k < k1; ++k) {
    const int tn = int(std::min<int64_t>(nt, T - k * nt));
    uint8_t* tile = ActTile(acts, k, nb, nt, kb);
    for (int t = 0; t < tn; ++t)
      for (int64_t s = 0; s < seg.count; ++s) {
        const float* xs = x + (k * nt + t) * ld + s * seg.cols;
        for (int64_t b = 0; b < nbs; ++b) {
          uint8_t* rec = tile + size_t(s * nbs + b) * ActRecordBytes(kb) * tn;
          int8_t q[256];  // [kb]
          float sx;
          int32_t sum;
          QuantizeActBlock(xs + b * kb, int(std::min<int64_t>(kb, seg.cols - b * kb)), kb, q, &sx, &sum);
          const int32_t corr = -128 * sum;
          std::memcpy(rec + 4 * t, &corr, 4);
          std::memcpy(rec + 4 * tn + 4 * t, &sx, 4);
          for (int j = 0; j < kb / 4; ++j) std::memcpy(rec + 8 * tn + 4 * (j * tn + t), q + 4 * j, 4);
        }
      }
  }
}

void QuantMatMulAvx2(const QuantKernelArgs& a, int64_t g0, int64_t g1) {
  switch (a.format) {
    case WeightFormat::Q8: return Kernel<false, 32>(a, g0, g1);
    case WeightFormat::Q4: return Kernel<true, 32>(a, g0, g1);
    case WeightFormat::Q8_256: return Kernel<false, 256>(a, g0, g1);
    case WeightFormat::Q4_256: return Kernel<true, 256>(a, g0, g1);
    default: return;
  }
}

}  // namespace rg::quant_internal
