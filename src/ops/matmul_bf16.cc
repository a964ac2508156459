// BF16-weight kernels: scalar, AVX2 and AVX-512 (see matmul_kernels.h).
// Exact mode widens weights to f32 (a 16-bit shift) and multiplies-adds in
// f32; the GEMM widens while packing and then shares the f32 micro-kernel.
// Fast mode (AVX512_BF16) rounds activations to bf16 and uses vdpbf16ps.
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

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias) {
  const uint16_t* W = static_cast<const uint16_t*>(wv);
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* wr = W + r * cols;
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * cols;
      float a[8] = {};
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; ++j) a[j] += BF16ToF32(wr[c + j]) * xt[c + j];
      float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      for (; c < cols; ++c) s += BF16ToF32(wr[c]) * xt[c];
      y[t * ldy + r] = s + (bias ? bias[r] : 0.f);
    }
  }
}

}  // namespace scalar_bf16

FormatKernels Bf16KernelsScalar() {
  FormatKernels k;
  k.skinny = scalar_bf16::Skinny;
  return k;
}

// ================================================================= AVX-512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
namespace avx512 {
namespace {

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias) {
  SkinnyRows(static_cast<const uint16_t*>(wv), cols, r0, r1, x, T, y, ldy, bias);
}

// Exact GEMM packer: bf16 -> f32, rows into lanes; the f32 kernel does the rest.
void PackWExact(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dstv) {
  constexpr int kMr = 32;
  const uint16_t* W = static_cast<const uint16_t*>(wv) + r0 * ldw + c0;
  float* dst = static_cast<float*>(dstv);
  for (int h = 0; h < kMr / 16; ++h) {
    const int rows = std::clamp(m - 16 * h, 0, 16);
    for (int c = 0; c < k; c += 16) {
      const int kk = std::min(16, k - c);
      const __mmask16 mask = Mask16(kk);
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = i < rows ? LoadBf16AsF32(W + (16 * h + i) * ldw + c, mask) : _mm512_setzero_ps();
      Transpose16x16(v);
      for (int j = 0; j < kk; ++j) _mm512_store_ps(dst + (c + j) * kMr + 16 * h, v[j]);
    }
  }
}

}  // namespace
}  // namespace avx512
#pragma GCC pop_options

// ---- fast mode: vdpbf16ps, 32 rows x up to 14 tokens, units = column pairs.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
namespace avx512bf16 {
namespace {

using avx512::Mask16;
using avx512::Mask32;
constexpr int kMr = 32;
constexpr int kNr = 14;

template <int N>
void GemmTile(const uint32_t* wp, const uint32_t* xp, int units, __mmask16 m0, __mmask16 m1,
              float* y, int64_t ldy, const float* bias, bool accumulate) {
  __m512 a0[N], a1[N];
  if (accumulate) {
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) {
      a0[t] = _mm512_maskz_loadu_ps(m0, y + t * ldy);
      a1[t] = _mm512_maskz_loadu_ps(m1, y + t * ldy + 16);
    }
  } else {
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) a0[t] = b0, a1[t] = b1;
  }
  for (int u = 0; u < units; ++u) {
    const __m512bh w0 = (__m512bh)_mm512_load_si512(wp);
    const __m512bh w1 = (__m512bh)_mm512_load_si512(wp + 16);
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int(xp[t]));
      a0[t] = _mm512_dpbf16_ps(a0[t], w0, b);
      a1[t] = _mm512_dpbf16_ps(a1[t], w1, b);
    }
    wp += kMr;
    xp += kNr;
  }
#pragma GCC unroll 16
  for (int t = 0; t < N; ++t) {
    _mm512_mask_storeu_ps(y + t * ldy, m0, a0[t]);
    _mm512_mask_storeu_ps(y + t * ldy + 16, m1, a1[t]);
  }
}

void GemmKernel(const void* wpv, const void* xpv, int units, int m, int n, float* y, int64_t ldy,
                const float* bias, bool accumulate) {
  const uint32_t* wp = static_cast<const uint32_t*>(wpv);
  const uint32_t* xp = static_cast<const uint32_t*>(xpv);
  const __mmask16 m0 = Mask16(m), m1 = Mask16(m - 16);
#define RG_CASE(N) \
  case N: GemmTile<N>(wp, xp, units, m0, m1, y, ldy, bias, accumulate); break;
  switch (n) {
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5) RG_CASE(6) RG_CASE(7)
    RG_CASE(8) RG_CASE(9) RG_CASE(10) RG_CASE(11) RG_CASE(12) RG_CASE(13) RG_CASE(14)
  }
#undef RG_CASE
}

// Units are bf16 pairs (W[r, c], W[r, c + 1]) as 32 bits: a 32-bit transpose.
void PackW(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dstv) {
  const uint16_t* W = static_cast<const uint16_t*>(wv) + r0 * ldw + c0;
  uint32_t* dst = static_cast<uint32_t*>(dstv);
  const int units = (k + 1) / 2;
  for (int h = 0; h < kMr / 16; ++h) {
    const int rows = std::clamp(m - 16 * h, 0, 16);
    for (int c = 0; c < k; c += 32) {
      const __mmask32 mask = Mask32(k - c);
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = i < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, W + (16 * h + i) * ldw + c))
                        : _mm512_setzero_ps();
      avx512::Transpose16x16(v);
      const int uu = std::min(16, units - c / 2);
      for (int j = 0; j < uu; ++j)
        _mm512_store_si512(dst + (c / 2 + j) * kMr + 16 * h, _mm512_castps_si512(v[j]));
    }
  }
}

void PackX(const float* x, int64_t ldx, int64_t t0, int n, int64_t c0, int k, void* dstv) {
  uint32_t* dst = static_cast<uint32_t*>(dstv);
  alignas(64) uint32_t tmp[16];
  for (int j = 0; j < n; ++j) {
    const float* xr = x + (t0 + j) * ldx + c0;
    for (int c = 0; c < k; c += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(Mask16(k - c), xr + c);
      const __m512 hi = _mm512_maskz_loadu_ps(Mask16(k - c - 16), xr + c + 16);
      _mm512_store_si512(tmp, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      const int uu = std::min(16, (k - c + 1) / 2);
      uint32_t* d = dst + (c / 2) * kNr + j;
      for (int u = 0; u < uu; ++u) d[u * kNr] = tmp[u];
    }
  }
}

}  // namespace

const GemmSpec kGemmFast = {kMr, kNr, 2, 512, 36 * kNr, PackW, PackX, GemmKernel};

}  // namespace avx512bf16
#pragma GCC pop_options

FormatKernels Bf16KernelsAvx512(bool has_avx512bf16) {
  static const GemmSpec exact = [] {
    GemmSpec s = *F32KernelsAvx512().gemm;
    s.pack_w = avx512::PackWExact;
    return s;
  }();
  FormatKernels k;
  k.skinny = avx512::Skinny;
  k.gemm = &exact;
  if (has_avx512bf16) k.gemm_fast = &avx512bf16::kGemmFast;
  return k;
}

// ================================================================= AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
namespace {

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias) {
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
  return k;
}

}  // namespace rg::mm
