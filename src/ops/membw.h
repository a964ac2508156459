// Machine limits for benchmarks and `rgemma bench`: streaming read bandwidth
// and the f32 FMA, bf16 dot and int8 dot peaks, measured with every thread
// of the pool.
#pragma once

#include <cstddef>

#include "core/threads.h"

namespace rg {

// Best of `repeats` timed streaming reads over a `bytes` buffer (2 MiB
// aligned, advised to use transparent huge pages if `huge_pages`; touched
// first), split across the pool. GB/s = 1e9 bytes / s.
double MeasureReadBandwidthGBs(ThreadPool& pool, size_t bytes = size_t(1) << 30,
                               bool huge_pages = true, int repeats = 5);

// Seconds for one streaming read of [data, data + bytes) split across the
// pool (a reference for kernels that stream the same bytes).
double StreamingReadSeconds(ThreadPool& pool, const void* data, size_t bytes);

// Best of a few timed runs of independent f32 FMAs on registers at the active
// ISA level (ops/cpu_features.h), on every thread. GFLOP/s counts 2 per FMA lane.
// If cpu_gflops is given, it receives the rate per CPU-second actually used,
// times the pool size (the peak the pool would reach on otherwise idle cores).
double MeasurePeakGflops(ThreadPool& pool, double* cpu_gflops = nullptr);

// Best of a few timed runs of independent AVX-512 VNNI vpdpbusd (int8 dot
// products, 2 ops per multiply-add) on every thread; 0 when the CPU has no
// VNNI (the int8 kernels then run AVX2 or scalar code). cpu_gops as above.
double MeasurePeakInt8Gops(ThreadPool& pool, double* cpu_gops = nullptr);

// The same for AVX512_BF16 vdpbf16ps (2 FLOP per multiply-add); 0 without it.
double MeasurePeakBf16Gflops(ThreadPool& pool, double* cpu_gflops = nullptr);

// CPU time this process has used, seconds (all threads).
double ProcessCpuSeconds();

}  // namespace rg
