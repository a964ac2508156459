#include "ops/kernel_context.h"

#include <algorithm>

#include "ops/matmul_kernels.h"
#include "ops/quant_matmul.h"

namespace rg {

KernelContext::KernelContext(ThreadPool& pool, const KernelOptions& options)
    : pool_(&pool),
      options_(options),
      isa_(ClampToHardware(options.isa.value_or(ActiveIsa()))),
      per_thread_(size_t(pool.size())) {}

void KernelContext::Reserve(int64_t max_t, int64_t max_cols, int64_t max_segments) {
  Grow(shared_, QuantMatMulSharedBytes(max_t, max_cols, max_segments));
  const size_t per_thread = std::max(mm::MatMulWorkBytes(isa_, max_cols, max_t), QuantMatMulThreadBytes(max_cols));
  for (AlignedBuffer& b : per_thread_) Grow(b, per_thread);
}

uint8_t* KernelContext::Grow(AlignedBuffer& b, size_t bytes) {
  // Grow-only; the contents need not survive (callers rewrite them).
  if (b.size() < bytes) b.Resize(bytes, /*zero=*/false);
  return b.data<uint8_t>();
}

uint8_t* KernelContext::Shared(size_t bytes) { return Grow(shared_, bytes); }

uint8_t* KernelContext::PerThread(int thread, size_t bytes) { return Grow(per_thread_[size_t(thread)], bytes); }

}  // namespace rg
