// F32-weight kernels: scalar, AVX2 and AVX-512 (see matmul_kernels.h).

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* self-init).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "ops/matmul_kernels.h"
#include "ops/matmul_simd.h"

namespace rg::mm {

// ================================================================= scalar
namespace scalar_f32 {

// Weights may sit at any byte offset (mmapped files): load through memcpy.
inline float Load(const char* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

}  // namespace scalar_f32

FormatKernels F32KernelsScalar() {
  FormatKernels k;
  k.skinny = SkinnyScalar<scalar_f32::Load, 4>;
  return k;
}

// ================================================================= AVX-512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
namespace avx512 {
namespace {

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias, uint8_t*) {
  DotRows(static_cast<const float*>(wv), cols, r0, r1, x, T, y, ldy, bias);
}

}  // namespace
}  // namespace avx512
#pragma GCC pop_options

FormatKernels F32KernelsAvx512() {
  FormatKernels k;
  k.skinny = avx512::Skinny;
  return k;
}

// ================================================================= AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
namespace {

void Skinny(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
            float* y, int64_t ldy, const float* bias, uint8_t*) {
  SkinnyRows(static_cast<const float*>(wv), cols, r0, r1, x, T, y, ldy, bias);
}

// ---- GEMM: 16 rows (2 ymm) x up to 6 tokens.
constexpr int kMr = 16;
constexpr int kNr = 6;

template <int N>
void GemmTile(const float* wp, const float* xp, int units, float* y, int64_t ldy,
              const float* bias, bool accumulate) {
  __m256 a0[N], a1[N];
  if (accumulate) {
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) {
      a0[t] = _mm256_loadu_ps(y + t * ldy);
      a1[t] = _mm256_loadu_ps(y + t * ldy + 8);
    }
  } else {
    const __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    const __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) a0[t] = b0, a1[t] = b1;
  }
  for (int u = 0; u < units; ++u) {
    const __m256 w0 = _mm256_load_ps(wp);
    const __m256 w1 = _mm256_load_ps(wp + 8);
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) {
      const __m256 b = _mm256_broadcast_ss(xp + t);
      a0[t] = _mm256_fmadd_ps(w0, b, a0[t]);
      a1[t] = _mm256_fmadd_ps(w1, b, a1[t]);
    }
    wp += kMr;
    xp += kNr;
  }
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) {
    _mm256_storeu_ps(y + t * ldy, a0[t]);
    _mm256_storeu_ps(y + t * ldy + 8, a1[t]);
  }
}

void GemmKernelFull(const float* wp, const float* xp, int units, int n, float* y, int64_t ldy,
                    const float* bias, bool accumulate) {
  switch (n) {
    case 1: GemmTile<1>(wp, xp, units, y, ldy, bias, accumulate); break;
    case 2: GemmTile<2>(wp, xp, units, y, ldy, bias, accumulate); break;
    case 3: GemmTile<3>(wp, xp, units, y, ldy, bias, accumulate); break;
    case 4: GemmTile<4>(wp, xp, units, y, ldy, bias, accumulate); break;
    case 5: GemmTile<5>(wp, xp, units, y, ldy, bias, accumulate); break;
    case 6: GemmTile<6>(wp, xp, units, y, ldy, bias, accumulate); break;
  }
}

void GemmKernel(const void* wpv, const void* xpv, int units, int m, int n, float* y, int64_t ldy,
                const float* bias, bool accumulate) {
  const float* wp = static_cast<const float*>(wpv);
  const float* xp = static_cast<const float*>(xpv);
  if (m == kMr) {
    GemmKernelFull(wp, xp, units, n, y, ldy, bias, accumulate);
    return;
  }
  // Row tail: go through a full-width tile on the stack.
  alignas(32) float tile[kNr][kMr];
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < kMr; ++i)
      tile[t][i] = i >= m ? 0.f : accumulate ? y[t * ldy + i] : bias ? bias[i] : 0.f;
  GemmKernelFull(wp, xp, units, n, &tile[0][0], kMr, nullptr, true);
  for (int t = 0; t < n; ++t) std::memcpy(y + t * ldy, tile[t], m * sizeof(float));
}

void PackW(const void* wv, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dstv) {
  const float* W = static_cast<const float*>(wv) + r0 * ldw + c0;
  float* dst = static_cast<float*>(dstv);
  for (int h = 0; h < kMr / 8; ++h) {
    const int rows = std::clamp(m - 8 * h, 0, 8);
    for (int c = 0; c < k; c += 8) {
      const int kk = std::min(8, k - c);
      const __m256i mask = Mask8(kk);
      __m256 v[8];
      for (int i = 0; i < 8; ++i)
        v[i] = i < rows ? _mm256_maskload_ps(W + (8 * h + i) * ldw + c, mask) : _mm256_setzero_ps();
      Transpose8x8(v);
      for (int j = 0; j < kk; ++j) _mm256_store_ps(dst + (c + j) * kMr + 8 * h, v[j]);
    }
  }
}

}  // namespace

void PackXF32(const float* x, int64_t ldx, int64_t t0, int n, int64_t c0, int k, void* dstv) {
  float* dst = static_cast<float*>(dstv);
  for (int j = 0; j < n; ++j) {
    const float* xr = x + (t0 + j) * ldx + c0;
    for (int u = 0; u < k; ++u) dst[u * kNr + j] = xr[u];
  }
}

const GemmSpec kGemmF32 = {kMr, kNr, 1, 256, 48 * kNr, PackW, PackXF32, GemmKernel};

}  // namespace avx2
#pragma GCC pop_options

FormatKernels F32KernelsAvx2() {
  FormatKernels k;
  k.skinny = avx2::Skinny;
  k.gemm = &avx2::kGemmF32;
  k.gemm_min_t = kAvx2GemmMinT;
  return k;
}

}  // namespace rg::mm
