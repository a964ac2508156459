// What every matrix product needs besides its operands: the settings that
// choose its kernel, the thread pool, and the work buffers the kernels use.
// Passed to MatMul explicitly (no process-wide state), so two models with
// different settings can run in one process; a session owns one in its
// Scratch (model/scratch.h). One context serves one product at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/threads.h"
#include "ops/cpu_features.h"

namespace rg {

// How BF16-weight products are computed.
//   kExact: weights widened to f32, f32 products and sums (exact up to the
//           summation order). The default: it is what the reference fixtures
//           hold for a bf16 checkpoint (docs/PERFORMANCE.md, "Precision").
//   kFast:  for T >= 12 (prefill, large batches), activations are rounded to
//           bf16 (nearest even) and the CPU's bf16 dot product (AVX512_BF16
//           vdpbf16ps) is used: about 1.8x the exact throughput when compute
//           bound; error <= 2^-9 * sum|W x| plus f32 rounding. Smaller T
//           (bound by the weight stream) and CPUs without AVX512_BF16 stay
//           exact.
// F32 and quantized weights ignore it.
enum class MatMulPrecision { kExact, kFast };

struct KernelOptions {
  MatMulPrecision precision = MatMulPrecision::kExact;
  // SIMD level of the matrix kernels, clamped to the hardware; unset: the
  // process default ActiveIsa() (the CPU, capped by RG_ISA).
  std::optional<Isa> isa;
  // T from which F32/BF16 products use the packed GEMM where the level has
  // one; 0: each kernel set's measured crossover. Tests force paths with it.
  int64_t gemm_min_t = 0;
};

class KernelContext {
 public:
  explicit KernelContext(ThreadPool& pool, const KernelOptions& options = {});
  KernelContext(const KernelContext&) = delete;
  KernelContext& operator=(const KernelContext&) = delete;

  ThreadPool& pool() const { return *pool_; }
  const KernelOptions& options() const { return options_; }
  MatMulPrecision precision() const { return options_.precision; }
  Isa isa() const { return isa_; }  // resolved and clamped

  // Sizes every buffer for products of up to max_t tokens and max_cols input
  // columns (inputs in up to max_segments heads for block-diagonal products),
  // so that such calls allocate nothing (a session calls it once).
  void Reserve(int64_t max_t, int64_t max_cols, int64_t max_segments = 1);

  // Work memory of one product, 64-byte aligned, contents undefined. A
  // buffer smaller than asked for is regrown (allocation only past Reserve).
  // Shared: one buffer for the whole call (e.g. the quantized activations,
  // written by the pool in disjoint parts); get it before the ParallelFor.
  uint8_t* Shared(size_t bytes);
  // PerThread: one buffer per pool thread (index as ParallelFor passes it).
  uint8_t* PerThread(int thread, size_t bytes);

 private:
  static uint8_t* Grow(AlignedBuffer& b, size_t bytes);

  ThreadPool* pool_;
  KernelOptions options_;
  Isa isa_;
  AlignedBuffer shared_;
  std::vector<AlignedBuffer> per_thread_;  // [pool.size()]
};

}  // namespace rg
