// MatMul throughput: decode (skinny, memory bound) and prefill (GEMM, compute
// bound) on RecurrentGemma-2B shapes, against the machine's measured read
// bandwidth and FMA peak, and OpenBLAS sgemm when linked (RG_HAVE_OPENBLAS).
//
//   bench_matmul [machine] [decode] [prefill] [sweep] [--threads=N] [--min-time=S]
//                [--shapes=RxC,...] [--tokens=T,...] [--formats=f32,bf16,...]
//                [--gemm-min-t=T]   (force the skinny / GEMM crossover)
//                [--fast]           (MatMulPrecision::kFast for decode / sweep)
// With no section named, runs machine + decode + prefill. For OpenBLAS use
// OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=<threads>.
// RG_ISA=scalar|avx2|avx512 selects the kernel level.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/threads.h"
#include "ops/cpu_features.h"
#include "ops/matmul.h"
#include "ops/matmul_kernels.h"
#include "ops/membw.h"

#ifdef RG_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using namespace rg;
using Clock = std::chrono::steady_clock;

struct Shape {
  int64_t rows, cols;
};

struct Options {
  int threads = 2;
  double min_time = 0.4;
  bool machine = false, decode = false, prefill = false, sweep = false;
  std::vector<Shape> decode_shapes = {{2560, 2560}, {7680, 2560}, {2560, 7680}, {256, 2560},
                                      {256000, 2560}};
  std::vector<Shape> prefill_shapes = {{2560, 2560}, {7680, 2560}, {2560, 7680}};
  std::vector<int64_t> decode_tokens = {1, 2, 4, 8, 16};
  std::vector<int64_t> prefill_tokens = {64, 128, 512};
  std::vector<int64_t> sweep_tokens = {1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64};
  std::vector<std::string> formats = {"f32", "bf16", "bf16fast", "openblas"};
  KernelOptions kernel;  // --fast, --gemm-min-t=
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    const size_t e = s.find(',', b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

std::vector<Shape> ParseShapes(const std::string& s) {
  std::vector<Shape> v;
  for (const std::string& p : Split(s)) {
    const size_t x = p.find('x');
    v.push_back({std::atoll(p.substr(0, x).c_str()), std::atoll(p.substr(x + 1).c_str())});
  }
  return v;
}

bool Has(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Timing {
  double best = 0, median = 0;  // wall seconds per call
  double cpu = 0;               // least process CPU seconds of a call (all threads)
};

// Times fn(i) for i = 0, 1, ... until min_time has passed (at least 3 runs
// after one warm-up).
template <class Fn>
Timing Time(double min_time, Fn&& fn) {
  fn(0);
  std::vector<double> t;
  double cpu = 1e30;
  const auto start = Clock::now();
  for (int i = 1;; ++i) {
    const double c = CpuSeconds();
    const auto a = Clock::now();
    fn(i);
    t.push_back(std::chrono::duration<double>(Clock::now() - a).count());
    cpu = std::min(cpu, CpuSeconds() - c);
    if (t.size() >= 3 && std::chrono::duration<double>(Clock::now() - start).count() >= min_time)
      break;
  }
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2], cpu};
}

// Weight storage: enough copies that the set exceeds the last-level cache, so
// decode measures DRAM; one copy for prefill.
struct WeightSet {
  std::vector<AlignedBuffer> copies;
  WeightMatrix Matrix(size_t i, WeightFormat f, Shape s) const {
    return {f, s.rows, s.cols, copies[i % copies.size()].data()};
  }
};

WeightSet MakeWeights(WeightFormat f, Shape s, size_t min_total_bytes) {
  const size_t bytes = size_t(s.rows * s.cols) * (f == WeightFormat::F32 ? 4 : 2);
  const size_t n = std::max<size_t>(1, (min_total_bytes + bytes - 1) / bytes);
  WeightSet w;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (size_t i = 0; i < n; ++i) {
    w.copies.emplace_back(bytes);
    if (f == WeightFormat::F32) {
      float* p = w.copies.back().data<float>();
      for (int64_t j = 0; j < s.rows * s.cols; ++j) p[j] = u(rng) * 0.05f;
    } else {
      uint16_t* p = w.copies.back().data<uint16_t>();
      for (int64_t j = 0; j < s.rows * s.cols; ++j) p[j] = F32ToBF16(u(rng) * 0.05f);
    }
  }
  return w;
}

std::vector<float> Activations(int64_t n) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = u(rng);
  return v;
}

double g_bw_huge = 0, g_bw_4k = 0, g_peak = 0, g_peak_cpu = 0;

void Machine(ThreadPool& pool) {
  g_bw_huge = MeasureReadBandwidthGBs(pool, size_t(1) << 30, true);
  g_bw_4k = MeasureReadBandwidthGBs(pool, size_t(1) << 30, false);
  g_peak = MeasurePeakGflops(pool, &g_peak_cpu);
  std::printf("machine: isa=%s avx512bf16=%d threads=%d read_bw_hugepage=%.1f GB/s "
              "read_bw_4k=%.1f GB/s fma_peak=%.0f GFLOP/s (per CPU-second: %.0f)\n",
              IsaName(ActiveIsa()), int(ActiveHasAvx512Bf16()), pool.size(), g_bw_huge, g_bw_4k,
              g_peak, g_peak_cpu);
}

void Decode(ThreadPool& pool, KernelContext& ctx, const Options& o) {
  std::printf("\n== decode (skinny): weights streamed from DRAM (rotating copies > 256 MB)\n"
              "   read_GB/s = plain streaming read of the same buffers, timed alongside;\n"
              "   %%read = MatMul GB/s / read_GB/s, %%bw = MatMul GB/s / 1 GiB hugepage read\n");
  std::printf("%-6s %-13s %3s %10s %9s %8s %9s %6s %6s %9s\n", "format", "shape", "T", "best_us",
              "med_us", "GB/s", "read_GB/s", "%read", "%bw", "GFLOP/s");
  for (const char* fname : {"f32", "bf16"}) {
    if (!Has(o.formats, fname)) continue;
    const WeightFormat f = std::string(fname) == "f32" ? WeightFormat::F32 : WeightFormat::BF16;
    for (Shape s : o.decode_shapes) {
      const WeightSet w = MakeWeights(f, s, size_t(256) << 20);
      const size_t bytes = size_t(s.rows * s.cols) * (f == WeightFormat::F32 ? 4 : 2);
      for (int64_t T : o.decode_tokens) {
        const std::vector<float> x = Activations(T * s.cols);
        std::vector<float> y(size_t(T * s.rows));
        // Interleave kernel and reference read so both see the same machine load.
        double best = 1e30, best_read = 1e30;
        std::vector<double> all;
        for (int round = 0; round < 3; ++round) {
          const auto t = Time(o.min_time / 3, [&](int i) {
            MatMul(w.Matrix(size_t(i), f, s), x.data(), T, y.data(), nullptr, ctx);
          });
          best = std::min(best, t.best);
          all.push_back(t.median);
          const auto r = Time(o.min_time / 6, [&](int i) {
            StreamingReadSeconds(pool, w.copies[size_t(i) % w.copies.size()].data(), bytes);
          });
          best_read = std::min(best_read, r.best);
        }
        std::sort(all.begin(), all.end());
        const double gbs = double(bytes) / best * 1e-9, read = double(bytes) / best_read * 1e-9;
        std::printf("%-6s %6lldx%-6lld %3lld %10.1f %9.1f %8.1f %9.1f %5.0f%% %5.0f%% %9.1f\n",
                    fname, (long long)s.rows, (long long)s.cols, (long long)T, best * 1e6,
                    all[1] * 1e6, gbs, read, 100 * gbs / read,
                    g_bw_huge > 0 ? 100 * gbs / g_bw_huge : 0.0,
                    2.0 * T * s.rows * s.cols / best * 1e-9);
        std::fflush(stdout);
      }
    }
  }
}

void Prefill(ThreadPool& pool, KernelContext& ctx, KernelContext& fast, const Options& o) {
  std::printf("\n== prefill (GEMM): y[T, rows] = x[T, cols] W^T, weights in one copy\n");
  std::printf("   GFLOP/s from the best wall time; cpuGF/s = flop / (least process CPU time /\n"
              "   threads), i.e. the rate per core while it actually ran (robust to a busy machine)\n");
  std::printf("%-9s %-13s %4s %10s %10s %9s %7s %9s %8s\n", "kernel", "shape", "T", "best_ms",
              "med_ms", "GFLOP/s", "%peak", "cpuGF/s", "%cpupk");
  for (Shape s : o.prefill_shapes) {
    const WeightSet wf = MakeWeights(WeightFormat::F32, s, 0);
    const WeightSet wb = MakeWeights(WeightFormat::BF16, s, 0);
    for (int64_t T : o.prefill_tokens) {
      const std::vector<float> x = Activations(T * s.cols);
      std::vector<float> y(size_t(T * s.rows));
      const double flop = 2.0 * T * s.rows * s.cols;
      auto report = [&](const char* name, Timing t) {
        const double g = flop / t.best * 1e-9;
        const double gc = flop / (t.cpu / pool.size()) * 1e-9;
        std::printf("%-9s %6lldx%-6lld %4lld %10.2f %10.2f %9.1f %6.0f%% %9.1f %7.0f%%\n", name,
                    (long long)s.rows, (long long)s.cols, (long long)T, t.best * 1e3,
                    t.median * 1e3, g, g_peak > 0 ? 100 * g / g_peak : 0.0, gc,
                    g_peak_cpu > 0 ? 100 * gc / g_peak_cpu : 0.0);
        std::fflush(stdout);
      };
      if (Has(o.formats, "f32"))
        report("f32", Time(o.min_time, [&](int) {
                 MatMul(wf.Matrix(0, WeightFormat::F32, s), x.data(), T, y.data(), nullptr, ctx);
               }));
      if (Has(o.formats, "bf16"))
        report(ctx.precision() == MatMulPrecision::kFast ? "bf16fast" : "bf16",
               Time(o.min_time, [&](int) {
                 MatMul(wb.Matrix(0, WeightFormat::BF16, s), x.data(), T, y.data(), nullptr, ctx);
               }));
      if (Has(o.formats, "bf16fast")) {
        report(ActiveHasAvx512Bf16() ? "bf16fast" : "bf16fast*", Time(o.min_time, [&](int) {
                 MatMul(wb.Matrix(0, WeightFormat::BF16, s), x.data(), T, y.data(), nullptr, fast);
               }));
      }
#ifdef RG_HAVE_OPENBLAS
      if (Has(o.formats, "openblas")) {
        const float* W = wf.copies[0].data<float>();
        report("openblas", Time(o.min_time, [&](int) {
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(s.rows),
                             int(s.cols), 1.f, x.data(), int(s.cols), W, int(s.cols), 0.f, y.data(),
                             int(s.rows));
               }));
      }
#endif
    }
  }
}

// Skinny vs GEMM crossover: every T in a range, both paths (via RG thresholds
// is internal; here just the default path) -- prints time per token.
void Sweep(ThreadPool& pool, KernelContext& ctx, const Options& o) {
  std::printf("\n== T sweep (default path), weights rotating > 256 MB\n");
  std::printf("%-6s %-13s %4s %10s %12s %9s %9s\n", "format", "shape", "T", "best_us", "us/token",
              "GFLOP/s", "cpuGF/s");
  for (const char* fname : {"f32", "bf16"}) {
    if (!Has(o.formats, fname)) continue;
    const WeightFormat f = std::string(fname) == "f32" ? WeightFormat::F32 : WeightFormat::BF16;
    for (Shape s : o.prefill_shapes) {
      const WeightSet w = MakeWeights(f, s, size_t(256) << 20);
      for (int64_t T : o.sweep_tokens) {
        const std::vector<float> x = Activations(T * s.cols);
        std::vector<float> y(size_t(T * s.rows));
        const Timing tm = Time(o.min_time, [&](int i) {
          MatMul(w.Matrix(size_t(i), f, s), x.data(), T, y.data(), nullptr, ctx);
        });
        const double best = tm.best, flop = 2.0 * T * s.rows * s.cols;
        std::printf("%-6s %6lldx%-6lld %4lld %10.1f %12.2f %9.1f %9.1f\n", fname, (long long)s.rows,
                    (long long)s.cols, (long long)T, best * 1e6, best * 1e6 / T, flop / best * 1e-9,
                    flop / (tm.cpu / pool.size()) * 1e-9);
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* key) -> const char* {
      const size_t n = std::strlen(key);
      return a.compare(0, n, key) == 0 ? argv[i] + n : nullptr;
    };
    if (a == "machine") o.machine = true;
    else if (a == "decode") o.decode = true;
    else if (a == "prefill") o.prefill = true;
    else if (a == "sweep") o.sweep = true;
    else if (const char* v = val("--threads=")) o.threads = std::atoi(v);
    else if (const char* v = val("--gemm-min-t=")) o.kernel.gemm_min_t = std::atoll(v);
    else if (a == "--fast") o.kernel.precision = MatMulPrecision::kFast;
    else if (const char* v = val("--min-time=")) o.min_time = std::atof(v);
    else if (const char* v = val("--shapes=")) o.decode_shapes = o.prefill_shapes = ParseShapes(v);
    else if (const char* v = val("--tokens=")) {
      o.decode_tokens.clear();
      for (const std::string& t : Split(v)) o.decode_tokens.push_back(std::atoll(t.c_str()));
      o.prefill_tokens = o.sweep_tokens = o.decode_tokens;
    } else if (const char* v = val("--formats=")) o.formats = Split(v);
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!o.machine && !o.decode && !o.prefill && !o.sweep) o.machine = o.decode = o.prefill = true;
  ThreadPool pool(o.threads);
  KernelContext ctx(pool, o.kernel);
  KernelOptions fast_options = o.kernel;
  fast_options.precision = MatMulPrecision::kFast;
  KernelContext fast(pool, fast_options);
  if (o.machine || o.decode) Machine(pool);
  if (o.decode) Decode(pool, ctx, o);
  if (o.prefill) {
    if (g_peak == 0) {
      g_peak = MeasurePeakGflops(pool, &g_peak_cpu);
      std::printf("fma_peak=%.0f GFLOP/s (per CPU-second: %.0f)\n", g_peak, g_peak_cpu);
    }
    Prefill(pool, ctx, fast, o);
  }
  if (o.sweep) Sweep(pool, ctx, o);
  return 0;
}
