// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* self-init).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "ops/membw.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "ops/cpu_features.h"
#include "ops/quant_matmul.h"

#include <immintrin.h>

namespace rg {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- streaming reads: XOR-fold every 64-byte line into a few registers.
__attribute__((target("avx512f"))) uint64_t ReadAvx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
  }
  a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  alignas(64) uint64_t out[8];
  _mm512_store_si512(out, a0);
  return out[0] ^ out[1] ^ out[2] ^ out[3] ^ out[4] ^ out[5] ^ out[6] ^ out[7];
}

__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), a0);
  return out[0] ^ out[1] ^ out[2] ^ out[3];
}

uint64_t ReadScalar(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t u, v;
    std::memcpy(&u, p + i, 8);
    std::memcpy(&v, p + i + 8, 8);
    a ^= u;
    b ^= v;
  }
  return a ^ b;
}

// ---- FMA peak: 12 independent chains per thread.
constexpr int64_t kFmaIters = 4'000'000;

// The FMA loops are in inline assembly so the compiler cannot keep the
// accumulators in memory or fold the chains: 12 independent vfmadd231ps per
// iteration on registers.
#define RG_FMA12(R)                                                              \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "0\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "1\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "2\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "3\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "4\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "5\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "6\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "7\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "8\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "9\n\t"                               \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "10\n\t"                              \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "11\n\t"

__attribute__((target("avx512f,fma"))) void FmaAvx512(int64_t iters) {
  __asm__ volatile(
      "vxorps %%xmm14, %%xmm14, %%xmm14\n\t"
      "vxorps %%xmm15, %%xmm15, %%xmm15\n\t"
      "1:\n\t" RG_FMA12("zmm")
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

__attribute__((target("avx2,fma"))) void FmaAvx2(int64_t iters) {
  __asm__ volatile(
      "vxorps %%xmm14, %%xmm14, %%xmm14\n\t"
      "vxorps %%xmm15, %%xmm15, %%xmm15\n\t"
      "1:\n\t" RG_FMA12("ymm")
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}
#undef RG_FMA12

// int8 peak: 12 independent vpdpbusd chains (64 multiply-adds each).
__attribute__((target("avx512f,avx512vnni"))) void VnniAvx512(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
      "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm0\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm1\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm2\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm3\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm5\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm6\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm7\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm8\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm9\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm10\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

// vdpbf16ps: 16 lanes x 2 multiply-adds; 12 independent chains.
__attribute__((target("avx512f,avx512bf16"))) void Bf16Avx512(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
      "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
      "1:\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm0\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm1\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm2\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm3\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm4\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm5\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm6\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm7\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm8\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm9\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm10\n\t"
      "vdpbf16ps %%zmm14, %%zmm15, %%zmm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

void FmaScalar(int64_t iters) {
  float a0 = 0, a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6, a7 = 7;
  for (int64_t it = 0; it < iters; ++it) {
    a0 = a0 * 0.999999f + 1e-7f, a1 = a1 * 0.999999f + 1e-7f;
    a2 = a2 * 0.999999f + 1e-7f, a3 = a3 * 0.999999f + 1e-7f;
    a4 = a4 * 0.999999f + 1e-7f, a5 = a5 * 0.999999f + 1e-7f;
    a6 = a6 * 0.999999f + 1e-7f, a7 = a7 * 0.999999f + 1e-7f;
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6),
                     "+x"(a7));
  }
}

volatile uint64_t g_sink;

}  // namespace

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double StreamingReadSeconds(ThreadPool& pool, const void* data, size_t bytes) {
  const uint8_t* buf = static_cast<const uint8_t*>(data);
  const Isa isa = ActiveIsa();
  const int n = pool.size();
  uint64_t sinks[64] = {};
  const auto t0 = Clock::now();
  pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t w = b; w < e; ++w) {
      // Pieces on 4 KiB boundaries.
      const size_t lo = bytes * w / n / 4096 * 4096;
      const size_t hi = w + 1 == n ? bytes : bytes * (w + 1) / n / 4096 * 4096;
      const uint8_t* p = buf + lo;
      sinks[w % 64] ^= isa == Isa::kAvx512 ? ReadAvx512(p, hi - lo)
                       : isa == Isa::kAvx2 ? ReadAvx2(p, hi - lo)
                                           : ReadScalar(p, hi - lo);
    }
  });
  const double s = Seconds(t0, Clock::now());
  for (uint64_t v : sinks) g_sink = g_sink ^ v;
  return s;
}

double MeasureReadBandwidthGBs(ThreadPool& pool, size_t bytes, bool huge_pages, int repeats) {
  constexpr size_t kAlign = size_t(2) << 20;
  bytes = std::max(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(kAlign, bytes));
  if (!buf) throw std::bad_alloc();
  madvise(buf, bytes, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  const int n = pool.size();
  // Touch with the threads that read, so pages are local to them.
  pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t w = b; w < e; ++w) {
      const size_t lo = bytes * w / n, hi = bytes * (w + 1) / n;
      std::memset(buf + lo, int(w + 1), hi - lo);
    }
  });
  double best = 0;
  for (int rep = 0; rep < std::max(1, repeats); ++rep)
    best = std::max(best, double(bytes) / StreamingReadSeconds(pool, buf, bytes) * 1e-9);
  std::free(buf);
  return best;
}

double MeasurePeakGflops(ThreadPool& pool, double* cpu_gflops) {
  const Isa isa = ActiveIsa();
  const int lanes = isa == Isa::kAvx512 ? 16 : isa == Isa::kAvx2 ? 8 : 1;
  const int64_t iters = isa == Isa::kScalar ? kFmaIters / 8 : kFmaIters;
  const int n = pool.size();
  double best = 0, best_cpu = 0;
  for (int rep = 0; rep < 10; ++rep) {
    const double c0 = ProcessCpuSeconds();
    const auto t0 = Clock::now();
    pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t w = b; w < e; ++w) {
        if (isa == Isa::kAvx512) FmaAvx512(iters);
        else if (isa == Isa::kAvx2) FmaAvx2(iters);
        else FmaScalar(iters);
      }
    });
    const double s = Seconds(t0, Clock::now());
    const double cpu = ProcessCpuSeconds() - c0;
    const double flop = double(n) * iters * (isa == Isa::kScalar ? 8 : 12) * lanes * 2;
    best = std::max(best, flop / s * 1e-9);
    best_cpu = std::max(best_cpu, flop / (cpu / n) * 1e-9);
  }
  if (cpu_gflops) *cpu_gflops = best_cpu;
  return best;
}

namespace {

// Best of 10 runs of loop(kFmaIters) on every thread; ops_per_iter per thread.
template <class Loop>
double MeasureLoopPeak(ThreadPool& pool, Loop loop, double ops_per_iter, double* cpu_rate) {
  const int n = pool.size();
  double best = 0, best_cpu = 0;
  for (int rep = 0; rep < 10; ++rep) {
    const double c0 = ProcessCpuSeconds();
    const auto t0 = Clock::now();
    pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t w = b; w < e; ++w) loop(kFmaIters);
    });
    const double s = Seconds(t0, Clock::now());
    const double cpu = ProcessCpuSeconds() - c0;
    const double ops = double(n) * kFmaIters * ops_per_iter;
    best = std::max(best, ops / s * 1e-9);
    best_cpu = std::max(best_cpu, ops / (cpu / n) * 1e-9);
  }
  if (cpu_rate) *cpu_rate = best_cpu;
  return best;
}

}  // namespace

double MeasurePeakInt8Gops(ThreadPool& pool, double* cpu_gops) {
  if (Int8KernelIsa(ActiveIsa()) != Isa::kAvx512) return 0;
  return MeasureLoopPeak(pool, VnniAvx512, 12.0 * 64 * 2, cpu_gops);  // 12 x 16 lanes x 4 MACs
}

double MeasurePeakBf16Gflops(ThreadPool& pool, double* cpu_gflops) {
  if (!ActiveHasAvx512Bf16()) return 0;
  return MeasureLoopPeak(pool, Bf16Avx512, 12.0 * 32 * 2, cpu_gflops);  // 12 x 16 lanes x 2 MACs
}

}  // namespace rg
