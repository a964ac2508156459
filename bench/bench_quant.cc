// Timing of the Q8 / Q4 kernels (ops/quant_matmul.h) against the machine's
// measured read bandwidth, in the same run.
//   bench_quant [threads=2] [isa=best|avx512|avx2|scalar] [what=all|bw|decode|prefill|quant]
//   bench_quant threads isa decode FORMAT [T ...]: one format, these batch sizes
//   bench_quant threads isa one ROWS COLS T [FORMAT [dram]]: one product
// Decode: weight GB/s = packed bytes / time per call; copies of the matrix
// are rotated so every call streams from DRAM, not L3. Prefill: GOP/s =
// 2 * rows * cols * T / time.
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12 intrinsics headers
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/threads.h"
#include "ops/quant.h"
#include "ops/cpu_features.h"
#include "ops/quant_matmul.h"

using namespace rg;

namespace {

double WallNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double ThreadCpuNow() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
// With one thread, time is this thread's CPU time: other processes sharing the
// cores do not count. With more threads it is wall time.
bool g_cpu_time = false;
double ProcessCpuNow() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
double Now() { return g_cpu_time ? ThreadCpuNow() : WallNow(); }

__attribute__((target("avx512f"))) int64_t SumAvx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a0 = _mm512_add_epi32(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi32(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi32(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi32(a3, _mm512_load_si512(p + i + 192));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)));
}
int64_t SumPlain(const uint8_t* p, size_t n) {
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i + 4 <= n / 8; i += 4) {
    a0 += q[i];
    a1 += q[i + 1];
    a2 += q[i + 2];
    a3 += q[i + 3];
  }
  return int64_t(a0 + a1 + a2 + a3);
}
int64_t Sum(const uint8_t* p, size_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 ? SumAvx512(p, n) : SumPlain(p, n);
}

// Best-of-reps read bandwidth (GB/s) over a 1 GiB hugepage buffer with the pool.
double ReadBandwidth(ThreadPool& pool) {
  const size_t n = size_t(1) << 30;
  AlignedBuffer buf(n);
  std::memset(buf.data(), 1, n);
  volatile int64_t sink = 0;
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const double t0 = Now();
    const int64_t chunks = 1024;  // 1 MiB pieces
    pool.ParallelFor(chunks, 1, [&](int64_t c0, int64_t c1, int) {
      sink = sink + Sum(buf.data<uint8_t>() + (n / chunks) * c0, (n / chunks) * (c1 - c0));
    });
    best = std::max(best, n / (Now() - t0) / 1e9);
  }
  return best;
}

// vpdpbusd throughput: 12 independent accumulators (pure), and the kernels'
// per-block mix of 8 vpdpbusd : cvt + mul + fma (mix). Returns ops (2 per
// int8 multiply-add) per second of this thread.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) double VnniRate(bool mix) {
  const int64_t iters = 2'000'000;
  __m512i w = _mm512_set1_epi8(3);
  const __m512i x = _mm512_set1_epi8(5);
  __m512i a[12];
  __m512 f[12];
  for (int k = 0; k < 12; ++k) {
    a[k] = _mm512_set1_epi32(k);
    f[k] = _mm512_setzero_ps();
  }
  const __m512 s = _mm512_set1_ps(1.0001f);
  const double t0 = ThreadCpuNow();
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < 8; ++j) {
#pragma GCC unroll 12
      for (int k = 0; k < 12; ++k) a[k] = _mm512_dpbusd_epi32(a[k], w, x);
      asm volatile("" : "+v"(w));
    }
    if (mix) {
#pragma GCC unroll 12
      for (int k = 0; k < 12; ++k) {
        f[k] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a[k]), s), s, f[k]);
        a[k] = _mm512_set1_epi32(k);
      }
    }
  }
  const double dt = ThreadCpuNow() - t0;
  __m512 acc = _mm512_setzero_ps();
  for (int k = 0; k < 12; ++k) acc = _mm512_add_ps(acc, _mm512_add_ps(f[k], _mm512_cvtepi32_ps(a[k])));
  volatile float sink = _mm512_reduce_add_ps(acc);
  (void)sink;
  return double(iters) * 8 * 12 * 64 * 2 / dt;
}

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Packed {
  AlignedBuffer buf;
  size_t bytes = 0;
  int copies = 1;
};

// Quantizes a Gaussian [rows, cols] matrix, then replicates it `copies` times.
Packed Make(WeightFormat f, int64_t rows, int64_t cols, size_t min_total, ThreadPool& pool) {
  Packed p;
  p.bytes = QuantizedBytes(f, rows, cols);
  p.copies = int(std::max<size_t>(1, (min_total + p.bytes - 1) / p.bytes));
  p.buf.Resize(p.bytes * p.copies);
  // Quantize in row slices to keep the f32 staging small.
  const int64_t slice = std::max<int64_t>(16, (int64_t(64) << 20) / (cols * 4) / 16 * 16);
  for (int64_t r0 = 0; r0 < rows; r0 += slice) {
    const int64_t n = std::min(slice, rows - r0);
    const auto w = Gaussian(size_t(n * cols), uint32_t(r0 + 1), 0.02f);
    QuantizeMatrix(f, w.data(), n, cols, p.buf.data<uint8_t>() + size_t(r0 / 16) * QuantizedGroupBytes(f, cols),
                   pool);
  }
  for (int c = 1; c < p.copies; ++c)
    std::memcpy(p.buf.data<uint8_t>() + c * p.bytes, p.buf.data<uint8_t>(), p.bytes);
  return p;
}

double MedianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Shape {
  int64_t rows, cols;
};
const Shape kShapes[] = {{2560, 7680}, {7680, 2560}, {256000, 2560}};
constexpr WeightFormat kQuantFormats[] = {WeightFormat::Q8, WeightFormat::Q4, WeightFormat::Q8_256,
                                          WeightFormat::Q4_256};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const std::string isa_arg = argc > 2 ? argv[2] : "best";
  const std::string what = argc > 3 ? argv[3] : "all";
  KernelOptions options;
  if (isa_arg != "best") options.isa = ParseIsa(isa_arg.c_str());
  ThreadPool pool(threads);
  KernelContext ctx(pool, options);
  g_cpu_time = threads == 1;
  std::printf("threads %d, isa %s, timing: %s\n", threads, IsaName(Int8KernelIsa(ctx.isa())),
              g_cpu_time ? "thread CPU time" : "wall time");
  const bool all = what == "all";

  double bw = 0;
  if (all || what == "bw" || what == "decode") {
    bw = ReadBandwidth(pool);
    std::printf("read bandwidth (1 GiB, hugepages, best of 6): %.1f GB/s\n", bw);
  }

  if ((all || what == "peak") && __builtin_cpu_supports("avx512vnni")) {
    std::printf("vpdpbusd peak per core (thread CPU time): pure %.0f GOP/s, with the kernels' 8:3 float mix %.0f GOP/s\n",
                VnniRate(false) / 1e9, VnniRate(true) / 1e9);
  }

  if (all || what == "decode") {
    std::printf("\n-- decode: weight bytes streamed per call (matrix copies rotated past L3)\n");
    // bench_quant threads isa decode [FORMAT [T ...]]: only those.
    std::vector<int64_t> Ts = {1, 4, 16};
    if (argc > 5) Ts.clear();
    for (int i = 5; i < argc; ++i) Ts.push_back(std::atoll(argv[i]));
    bool known = argc <= 4;
    for (WeightFormat f : kQuantFormats) known = known || std::string(argv[4]) == WeightFormatName(f);
    for (int64_t T : Ts) known = known && T >= 1 && T <= 4096;
    if (!known) {
      std::fprintf(stderr, "bench_quant decode: expected FORMAT in q8|q4|q8_256|q4_256 and T in [1, 4096]\n");
      return 2;
    }
    for (WeightFormat f : kQuantFormats)
      for (const Shape& s : kShapes) {
        if (argc > 4 && std::string(argv[4]) != WeightFormatName(f)) continue;
        Packed p = Make(f, s.rows, s.cols, size_t(512) << 20, pool);
        for (int64_t T : Ts) {
          const auto x = Gaussian(size_t(T * s.cols), 5, 1.f);
          std::vector<float> y(size_t(T * s.rows));
          std::vector<double> times;
          const int reps = std::max(8, std::min(200, int((size_t(4) << 30) / p.bytes)));
          for (int i = 0; i < reps + 2; ++i) {
            const WeightMatrix w{f, s.rows, s.cols, p.buf.data<uint8_t>() + (i % p.copies) * p.bytes};
            const double t0 = Now();
            MatMulQuantized(w, x.data(), T, y.data(), nullptr, ctx);
            if (i >= 2) times.push_back(Now() - t0);
          }
          const double med = MedianOf(times), best = *std::min_element(times.begin(), times.end());
          std::printf("%s %6lld x %5lld T=%2lld: median %8.1f us  %5.1f GB/s (%3.0f%% of read bw), best %5.1f GB/s, %6.1f GOP/s\n",
                      WeightFormatName(f), (long long)s.rows, (long long)s.cols, (long long)T, med * 1e6,
                      p.bytes / med / 1e9, bw > 0 ? 100 * p.bytes / med / 1e9 / bw : 0.0,
                      p.bytes / best / 1e9, 2.0 * s.rows * s.cols * T / med / 1e9);
        }
      }
  }

  if (all || what == "prefill") {
    std::printf("\n-- prefill T=128 / 512\n");
    for (WeightFormat f : kQuantFormats)
      for (const Shape& s : kShapes) {
        Packed p = Make(f, s.rows, s.cols, 0, pool);
        const WeightMatrix w{f, s.rows, s.cols, p.buf.data()};
        for (int64_t T : {128, 512}) {
          const auto x = Gaussian(size_t(T * s.cols), 6, 1.f);
          std::vector<float> y(size_t(T * s.rows));
          const double ops = 2.0 * s.rows * s.cols * T;
          const int reps = std::max(3, int(20e9 / ops));
          std::vector<double> times, cpus;
          for (int i = 0; i < reps + 1; ++i) {
            const double t0 = Now(), c0 = ProcessCpuNow();
            MatMulQuantized(w, x.data(), T, y.data(), nullptr, ctx);
            if (i >= 1) {
              times.push_back(Now() - t0);
              cpus.push_back(ProcessCpuNow() - c0);
            }
          }
          const double med = MedianOf(times), best = *std::min_element(times.begin(), times.end());
          // Per CPU-second of the whole process: what each core delivers while
          // it runs, whatever else shares the machine.
          std::printf("%s %6lld x %5lld T=%3lld: median %9.2f ms  %6.1f GOP/s (best %6.1f); per core %6.1f GOP/s\n",
                      WeightFormatName(f), (long long)s.rows, (long long)s.cols, (long long)T, med * 1e3,
                      ops / med / 1e9, ops / best / 1e9, ops / MedianOf(cpus) / 1e9);
        }
      }
  }

  if (what == "one") {  // bench_quant threads isa one rows cols T [q8|q4|q8_256|q4_256 [dram]]
    const int64_t rows = std::atoll(argv[4]), cols = std::atoll(argv[5]), T = std::atoll(argv[6]);
    WeightFormat f = WeightFormat::Q8;
    for (WeightFormat g : kQuantFormats)
      if (argc > 7 && std::string(argv[7]) == WeightFormatName(g)) f = g;
    // With `dram`, copies rotated past L3, so that each product reads its
    // weights from DRAM as in the model (whose weights are far larger than
    // L3); else one copy, in L3 from the second product on.
    const bool dram = argc > 8 && std::string(argv[8]) == "dram";
    Packed p = Make(f, rows, cols, dram ? size_t(256) << 20 : 0, pool);
    const auto x = Gaussian(size_t(T * cols), 6, 1.f);
    std::vector<float> y(size_t(T * rows));
    const double ops = 2.0 * rows * cols * T;
    std::vector<double> times, cpus;
    for (int i = 0; i < std::max(5, int(4e9 / ops)); ++i) {
      const WeightMatrix w{f, rows, cols, p.buf.data<uint8_t>() + (i % p.copies) * p.bytes};
      const double t0 = Now(), c0 = ProcessCpuNow();
      MatMulQuantized(w, x.data(), T, y.data(), nullptr, ctx);
      times.push_back(Now() - t0);
      cpus.push_back(ProcessCpuNow() - c0);
    }
    const double med = MedianOf(times), best = *std::min_element(times.begin(), times.end());
    std::printf("%s %lld x %lld T=%lld: median %.3f ms %.1f GOP/s %.1f GB/s; best %.1f GOP/s %.1f GB/s; per core %.1f GOP/s\n",
                WeightFormatName(f), (long long)rows, (long long)cols, (long long)T, med * 1e3,
                ops / med / 1e9, p.bytes / med / 1e9, ops / best / 1e9, p.bytes / best / 1e9,
                ops / MedianOf(cpus) / 1e9);
  }

  if (all || what == "quant") {
    std::printf("\n-- quantization of a 2560 x 7680 f32 matrix (speed on N(0, 0.02^2); errors per distribution)\n");
    const int64_t rows = 2560, cols = 7680;
    for (int dist = 0; dist < 3; ++dist) {
      std::vector<float> w = Gaussian(size_t(rows * cols), 9, 0.02f);
      const char* dname = "gaussian";
      if (dist > 0) {
        std::mt19937 rng(10 + dist);
        std::student_t_distribution<float> st(4.f);
        std::exponential_distribution<float> ex(1.f);
        for (auto& v : w) v = 0.02f * (dist == 1 ? st(rng) : ((rng() & 1) ? ex(rng) : -ex(rng)));
        dname = dist == 1 ? "student-t(4)" : "laplace";
      }
      // q4_0-style reference at the same 4.5 bits: d = max / -8, levels -8..7.
      double se0 = 0, ss0 = 0;
      for (size_t b = 0; b < w.size(); b += 32) {
        float vmax = 0;
        for (size_t i = b; i < b + 32; ++i)
          if (std::fabs(w[i]) > std::fabs(vmax)) vmax = w[i];
        const float d = vmax / -8.f;
        for (size_t i = b; i < b + 32; ++i) {
          const float q = d == 0 ? 0 : std::min(7.f, std::max(-8.f, std::nearbyint(w[i] / d)));
          se0 += double(w[i] - q * d) * (w[i] - q * d);
          ss0 += double(w[i]) * w[i];
        }
      }
      for (WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
        AlignedBuffer q(QuantizedBytes(f, rows, cols));
        const double t0 = Now();
        QuantizeMatrix(f, w.data(), rows, cols, q.data(), pool);
        const double dt = Now() - t0;
        const WeightMatrix m{f, rows, cols, q.data()};
        std::vector<float> row(cols);
        double se = 0, ss = 0, emax = 0;
        for (int64_t r = 0; r < rows; ++r) {
          DequantizeRow(m, r, row.data());
          for (int64_t c = 0; c < cols; ++c) {
            const double e = double(row[c]) - w[r * cols + c];
            se += e * e;
            ss += double(w[r * cols + c]) * w[r * cols + c];
            emax = std::max(emax, std::fabs(e));
          }
        }
        std::printf("%-12s %s: %7.1f ms (%4.0f Mweights/s), %.3f bits/weight, relative RMS error %.5f, max |error| %.5f",
                    dname, WeightFormatName(f), dt * 1e3, rows * cols / dt / 1e6,
                    8.0 * q.size() / (rows * cols), std::sqrt(se / ss), emax);
        if (f == WeightFormat::Q4) std::printf("  (q4_0 reference %.5f)", std::sqrt(se0 / ss0));
        std::printf("\n");
      }
    }
  }
  return 0;
}
