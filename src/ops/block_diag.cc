// Block-diagonal gate products (math in ops/block_diag.h): the scalar oracle,
// its loops compiled for AVX2, and an AVX-512 register-tiled kernel.
#include "ops/block_diag.h"

#include <immintrin.h>

#include <algorithm>

#include "ops/cpu_features.h"
#include "ops/matmul_simd.h"  // Mask16, GroupSize (after the standard headers)

// GCC 12 reports its own _mm512_undefined_* helpers as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rg {
namespace {

// Heads [h0, h1) of the product, plain loops: for each token, the output row
// starts at 0 and takes x[t, i] * W[h, i, :] for i in order (contiguous rows of
// W and y, so a compiler can vectorize over j without changing any output's
// order), then the bias.
inline __attribute__((always_inline)) void HeadsLoops(const float* w, const float* x, int64_t T, int64_t H,
                                                      int64_t b, float* y, const float* bias, int64_t h0,
                                                      int64_t h1) {
  const int64_t L = H * b;
  for (int64_t hd = h0; hd < h1; ++hd) {
    const float* wh = w + hd * b * b;  // [b_in, b_out]
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * L + hd * b;  // [b_in]
      float* yt = y + t * L + hd * b;        // [b_out]
      for (int64_t j = 0; j < b; ++j) yt[j] = 0.f;
      for (int64_t i = 0; i < b; ++i) {
        const float xi = xt[i];
        const float* wr = wh + i * b;
        for (int64_t j = 0; j < b; ++j) yt[j] += xi * wr[j];
      }
      if (bias)
        for (int64_t j = 0; j < b; ++j) yt[j] += bias[hd * b + j];
    }
  }
}

__attribute__((target("avx2,fma"))) void HeadsAvx2(const float* w, const float* x, int64_t T, int64_t H,
                                                   int64_t b, float* y, const float* bias, int64_t h0,
                                                   int64_t h1) {
  HeadsLoops(w, x, T, H, b, y, bias, h0, h1);
}

#define RG_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,fma")))

// Outputs [j0, j0 + 16 V) of one head for N tokens: acc[v][t] holds 16
// outputs of token t; each W row segment loaded serves N tokens, each
// broadcast activation V vectors. w, bias at the head; x, y at token 0 of the
// group and the head's first column.
template <int V, int N>
RG_TARGET_AVX512 void Tile(const float* w, int64_t b, int64_t j0, const float* x, float* y, int64_t L,
                           const float* bias) {
  __mmask16 m[V];
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) m[v] = mm::avx512::Mask16(b - j0 - 16 * v);
  __m512 acc[V][N];
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v)
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) acc[v][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < b; ++i) {
    const float* wr = w + i * b + j0;
    __m512 wv[V];
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) wv[v] = _mm512_maskz_loadu_ps(m[v], wr + 16 * v);
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * L + i]);
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[v][t] = _mm512_fmadd_ps(wv[v], xb, acc[v][t]);
    }
  }
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) {
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m[v], bias + j0 + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t)
      _mm512_mask_storeu_ps(y + t * L + j0 + 16 * v, m[v], _mm512_add_ps(acc[v][t], bv));
  }
}

// A token group of n <= 6 with 4-vector tiles (24 accumulators).
RG_TARGET_AVX512 void GroupAvx512(int n, const float* w, int64_t b, int64_t j0, const float* x, float* y,
                                  int64_t L, const float* bias) {
  switch (n) {
    case 1: return Tile<4, 1>(w, b, j0, x, y, L, bias);
    case 2: return Tile<4, 2>(w, b, j0, x, y, L, bias);
    case 3: return Tile<4, 3>(w, b, j0, x, y, L, bias);
    case 4: return Tile<4, 4>(w, b, j0, x, y, L, bias);
    case 5: return Tile<4, 5>(w, b, j0, x, y, L, bias);
    default: return Tile<4, 6>(w, b, j0, x, y, L, bias);
  }
}

RG_TARGET_AVX512 void HeadsAvx512(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                                  const float* bias, int64_t h0, int64_t h1) {
  const int64_t L = H * b;
  for (int64_t hd = h0; hd < h1; ++hd) {
    const float* wh = w + hd * b * b;
    const float* bh = bias ? bias + hd * b : nullptr;
    const float* xh = x + hd * b;
    float* yh = y + hd * b;
    if (T == 1) {
      // Decode: 256 outputs per pass read whole rows of W in order (one
      // sequential stream, as the weights come from memory).
      for (int64_t j0 = 0; j0 < b; j0 += 256) Tile<16, 1>(wh, b, j0, xh, yh, L, bh);
      continue;
    }
    // Prefill: groups of at most 6 tokens (balanced), each over the head's
    // 64-output tiles; the head's weights stay in L2 across the groups.
    for (int64_t t = 0; t < T;) {
      const int n = mm::avx512::GroupSize(T - t, 6);
      for (int64_t j0 = 0; j0 < b; j0 += 64) GroupAvx512(n, wh, b, j0, xh + t * L, yh + t * L, L, bh);
      t += n;
    }
  }
}

}  // namespace

void BlockDiagMatMulScalar(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                           const float* bias) {
  if (T <= 0 || H <= 0 || b <= 0) return;
  HeadsLoops(w, x, T, H, b, y, bias, 0, H);
}

void BlockDiagMatMul(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                     const float* bias, KernelContext& ctx) {
  if (T <= 0 || H <= 0 || b <= 0) return;
  const Isa isa = ctx.isa();
  ctx.pool().ParallelFor(H, 1, [&](int64_t h0, int64_t h1, int) {
    switch (isa) {
      case Isa::kAvx512: return HeadsAvx512(w, x, T, H, b, y, bias, h0, h1);
      case Isa::kAvx2: return HeadsAvx2(w, x, T, H, b, y, bias, h0, h1);
      default: return HeadsLoops(w, x, T, H, b, y, bias, h0, h1);
    }
  });
}

}  // namespace rg
