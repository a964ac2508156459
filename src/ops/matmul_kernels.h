// Internal interface between the MatMul dispatcher (matmul.cc) and the SIMD
// kernels (matmul_f32.cc, matmul_bf16.cc, matmul_simd.h). Not for use outside ops/.
//
// Every kernel computes y[t * ldy + r] for a row range [r0, r1) and all T
// tokens; the dispatcher splits rows across the thread pool and hands each
// piece its thread's work memory (KernelContext::PerThread).
//   * Dot-product ("skinny") kernels: the column (input feature) index is in
//     the vector lanes, weights and activations are read in place, R rows x
//     up to 6 tokens of accumulators, horizontal sums at the end. On AVX-512
//     they serve every exact T (token blocks / column chunks keep the
//     activations in L2 for large T); see matmul_simd.h.
//   * Packed GEMM (AVX2, T >= kAvx2GemmMinT): weights packed per (row panel,
//     K block) into the thread's buffer with the output rows in the vector
//     lanes, activations packed per token panel, register-blocked mr x nr
//     micro-kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/cpu_features.h"

namespace rg::mm {

// work: the thread's buffer of FormatKernels::*_bytes(cols, T) bytes.
using SkinnyFn = void (*)(const void* w, int64_t cols, int64_t r0, int64_t r1, const float* x,
                          int64_t T, float* y, int64_t ldy, const float* bias, uint8_t* work);

// A packed GEMM. Packed data is in 4-byte "units": one f32 (kstep 1), or a
// pair of bf16 covering kstep = 2 consecutive columns (supported by the
// driver; no current kernel uses it: a vdpbf16ps GEMM packing bf16 pairs per
// call measured 0-10% slower than the c-in-lanes fast kernel on Zen 4, the
// packing of W not being amortized over a 128-token prefill chunk).
struct GemmSpec {
  int mr;      // output rows per micro-tile (vector lanes)
  int nr;      // tokens per micro-tile (broadcast)
  int kstep;   // columns per unit: 1 or 2
  int kc;      // columns per K block (multiple of kstep)
  int nc_max;  // tokens per token block (multiple of nr)
  // dst[u * mr + i] = unit (r0 + i, c0 + u * kstep) of W for i < m, 0 for m <= i < mr;
  // columns >= c0 + k read as 0. dst is 64-byte aligned.
  void (*pack_w)(const void* w, int64_t ldw, int64_t r0, int m, int64_t c0, int k, void* dst);
  // dst[u * nr + j] = unit (t0 + j, c0 + u * kstep) of x for j < n (rounded to bf16 if kstep 2).
  void (*pack_x)(const float* x, int64_t ldx, int64_t t0, int n, int64_t c0, int k, void* dst);
  // For t < n, i < m: y[t * ldy + i] = init + sum_u wp[u * mr + i] . xp[u * nr + t],
  // init = y[t * ldy + i] if accumulate, else bias[i] if bias, else 0.
  void (*kernel)(const void* wp, const void* xp, int units, int m, int n, float* y, int64_t ldy,
                 const float* bias, bool accumulate);
};

// Bytes of work memory GemmRows needs for spec s (both packing buffers; the
// same for every shape).
size_t GemmWorkBytes(const GemmSpec& s);
// Blocked GEMM over rows [r0, r1), packing into work (GemmWorkBytes(s)
// bytes, 64-byte aligned). Generic driver, no SIMD of its own.
void GemmRows(const GemmSpec& s, const void* w, int64_t cols, int64_t r0, int64_t r1,
              const float* x, int64_t T, float* y, int64_t ldy, const float* bias, uint8_t* work);

// The most per-thread work memory any F32/BF16 kernel of `isa` needs for
// up to T tokens of rows of `cols` columns (KernelContext::Reserve).
size_t MatMulWorkBytes(Isa isa, int64_t cols, int64_t T);

// Kernel sets per level. Null members: not available at that level.
struct FormatKernels {
  SkinnyFn skinny = nullptr;            // exact, any T
  size_t (*skinny_bytes)(int64_t cols, int64_t T) = nullptr;  // its work memory; null: none
  const GemmSpec* gemm = nullptr;       // exact, used for T >= gemm_min_t
  int64_t gemm_min_t = 8;
  // MatMulPrecision::kFast (activations rounded to bf16, vdpbf16ps), used
  // for T >= fast_min_t.
  SkinnyFn skinny_fast = nullptr;
  size_t (*skinny_fast_bytes)(int64_t cols, int64_t T) = nullptr;
  int64_t fast_min_t = 2;
};

// AVX2: the dot-product kernels up to this T, the packed GEMM from it on
// (measured crossover; AVX-512 has no GEMM: its dot kernels are faster at
// every T).
constexpr int64_t kAvx2GemmMinT = 32;

FormatKernels F32KernelsScalar();
FormatKernels F32KernelsAvx2();
FormatKernels F32KernelsAvx512();
FormatKernels Bf16KernelsScalar();
FormatKernels Bf16KernelsAvx2();
FormatKernels Bf16KernelsAvx512(bool has_avx512bf16);

// The scalar skinny product, for weights whose element at byte p reads as
// Load(p) and takes kBytes bytes (weights may sit at any offset of an
// mmapped file). Eight partial sums, as the SIMD kernels keep lanes.
template <float (*Load)(const char*), int kBytes>
void SkinnyScalar(const void* wv, int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t T,
                  float* y, int64_t ldy, const float* bias, uint8_t*) {
  const char* W = static_cast<const char*>(wv);
  for (int64_t r = r0; r < r1; ++r) {
    const char* wr = W + r * cols * int64_t(kBytes);
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * cols;
      float a[8] = {};
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; ++j) a[j] += Load(wr + kBytes * (c + j)) * xt[c + j];
      float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      for (; c < cols; ++c) s += Load(wr + kBytes * c) * xt[c];
      y[t * ldy + r] = s + (bias ? bias[r] : 0.f);
    }
  }
}

}  // namespace rg::mm
