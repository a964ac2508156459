// MatMul dispatcher: picks the kernel set for the active ISA level and weight
// format, chooses skinny (decode) or packed GEMM (prefill) by T, and splits
// output rows across the pool. Also the generic blocked GEMM driver.
#include "ops/matmul.h"

#include <algorithm>
#include <atomic>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "ops/cpu_features.h"
#include "ops/matmul_kernels.h"
#include "ops/quant.h"
#include "ops/quant_matmul.h"

namespace rg {
namespace mm {
namespace {

struct GemmBuffers {
  AlignedBuffer wp, xp;
};
thread_local GemmBuffers tl_gemm;

void* Reserve(AlignedBuffer& b, size_t bytes) {
  if (b.size() < bytes) b.Resize(bytes);
  return b.data();
}

}  // namespace

void GemmRows(const GemmSpec& s, const void* w, int64_t cols, int64_t r0, int64_t r1,
              const float* x, int64_t T, float* y, int64_t ldy, const float* bias) {
  const int64_t units_kc = (s.kc + s.kstep - 1) / s.kstep;
  // Buffers sized for the largest block, so their size never depends on T.
  char* wp = static_cast<char*>(Reserve(tl_gemm.wp, size_t(units_kc) * s.mr * 4));
  char* xp = static_cast<char*>(Reserve(tl_gemm.xp, size_t(units_kc) * s.nc_max * 4));
  // Token blocks of (nearly) equal size, rounded up to whole panels.
  const int64_t n_tb = (T + s.nc_max - 1) / s.nc_max;
  int64_t nc = (T + n_tb - 1) / n_tb;
  nc = std::min<int64_t>((nc + s.nr - 1) / s.nr * s.nr, s.nc_max);
  for (int64_t t0 = 0; t0 < T; t0 += nc) {
    const int64_t nt = std::min(nc, T - t0);
    const int64_t panels = (nt + s.nr - 1) / s.nr;
    for (int64_t c0 = 0; c0 < cols; c0 += s.kc) {
      const int k = int(std::min<int64_t>(s.kc, cols - c0));
      const int units = (k + s.kstep - 1) / s.kstep;
      const size_t panel_bytes = size_t(units) * s.nr * 4;
      for (int64_t p = 0; p < panels; ++p)
        s.pack_x(x, cols, t0 + p * s.nr, int(std::min<int64_t>(s.nr, nt - p * s.nr)), c0, k,
                 xp + p * panel_bytes);
      for (int64_t r = r0; r < r1; r += s.mr) {
        const int m = int(std::min<int64_t>(s.mr, r1 - r));
        s.pack_w(w, cols, r, m, c0, k, wp);
        for (int64_t p = 0; p < panels; ++p)
          s.kernel(wp, xp + p * panel_bytes, units, m,
                   int(std::min<int64_t>(s.nr, nt - p * s.nr)), y + (t0 + p * s.nr) * ldy + r,
                   ldy, c0 == 0 && bias ? bias + r : nullptr, c0 != 0);
      }
    }
  }
}

}  // namespace mm

namespace {

std::atomic<int> g_precision{int(MatMulPrecision::kExact)};

struct KernelTable {
  mm::FormatKernels f32, bf16;
};

const KernelTable& Kernels(Isa isa) {
  static const KernelTable tables[3] = {
      {mm::F32KernelsScalar(), mm::Bf16KernelsScalar()},
      {mm::F32KernelsAvx2(), mm::Bf16KernelsAvx2()},
      {mm::F32KernelsAvx512(), mm::Bf16KernelsAvx512(HardwareHasAvx512Bf16())},
  };
  return tables[int(isa)];
}

// Test override of FormatKernels::gemm_min_t (0: none).
std::atomic<int64_t> g_gemm_min_t{0};
// Below this many multiply-adds per piece, splitting across threads costs
// more than it saves.
constexpr int64_t kMinMacsPerPiece = 1 << 16;

int64_t Grain(int64_t unit, int64_t macs_per_row) {
  const int64_t rows = (kMinMacsPerPiece + macs_per_row - 1) / std::max<int64_t>(1, macs_per_row);
  return std::max<int64_t>(1, (rows + unit - 1) / unit) * unit;
}

}  // namespace

int64_t mm::SetGemmMinTForTesting(int64_t t) {
  return g_gemm_min_t.exchange(t <= 0 ? 0 : t);
}

void SetMatMulPrecision(MatMulPrecision p) { g_precision.store(int(p), std::memory_order_relaxed); }
MatMulPrecision GetMatMulPrecision() {
  return MatMulPrecision(g_precision.load(std::memory_order_relaxed));
}

namespace {

// The kernel one F32/BF16 product runs: the blocked GEMM, or the skinny
// (few-token) kernel.
struct Plan {
  const mm::GemmSpec* gemm = nullptr;
  mm::SkinnyFn skinny = nullptr;
  int64_t row_unit = 4;  // rows per piece are a multiple of this

  void Rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t T, float* y,
            int64_t ldy, const float* bias) const {
    if (gemm) mm::GemmRows(*gemm, w.data, w.cols, r0, r1, x, T, y, ldy, bias);
    else skinny(w.data, w.cols, r0, r1, x, T, y, ldy, bias);
  }
};

Plan ChoosePlan(WeightFormat format, int64_t T) {
  const KernelTable& table = Kernels(ActiveIsa());
  const mm::FormatKernels* k = format == WeightFormat::F32 ? &table.f32 : &table.bf16;
  const int64_t override_min_t = g_gemm_min_t.load(std::memory_order_relaxed);
  const int64_t gemm_min_t = override_min_t > 0 ? override_min_t : k->gemm_min_t;
  Plan p;
  p.skinny = k->skinny;
  if (GetMatMulPrecision() == MatMulPrecision::kFast && k->skinny_fast && T >= k->fast_min_t) {
    p.skinny = k->skinny_fast;
  } else if (k->gemm && T >= gemm_min_t) {
    p.gemm = k->gemm;
    p.row_unit = k->gemm->mr;
  }
  return p;
}

void FillBias(int64_t rows, int64_t T, float* y, int64_t ldy, const float* bias) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] = bias ? bias[r] : 0.f;
}

}  // namespace

void MatMul(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
            ThreadPool& pool) {
  if (T <= 0 || w.rows <= 0) return;
  switch (w.format) {
    case WeightFormat::F32:
    case WeightFormat::BF16: break;
    case WeightFormat::Q8:
    case WeightFormat::Q4:
      MatMulQuantized(w, x, T, y, bias, pool);
      return;
    default: Fail("MatMul: unknown weight format ", int(w.format));
  }
  if (w.cols <= 0) return FillBias(w.rows, T, y, w.rows, bias);  // empty sums: y = bias
  const Plan plan = ChoosePlan(w.format, T);
  pool.ParallelFor(w.rows, Grain(plan.row_unit, w.cols * T), [&](int64_t r0, int64_t r1, int) {
    plan.Rows(w, r0, r1, x, T, y, w.rows, bias);
  });
}

void MatMulShared(std::span<const MatMulTarget> targets, const float* x, int64_t T, ThreadPool& pool) {
  bool shared = !targets.empty() && T > 0 && IsQuantizedFormat(targets[0].w->format);
  for (const MatMulTarget& tg : targets)
    shared = shared && tg.w->format == targets[0].w->format && tg.w->cols == targets[0].w->cols && tg.w->rows > 0;
  if (shared) return MatMulQuantizedShared(targets, x, T, pool);
  for (const MatMulTarget& tg : targets) MatMul(*tg.w, x, T, tg.y, tg.bias, pool);
}

void BlockDiagMatMul(const float* w, const float* x, int64_t T, int64_t H, int64_t b, float* y,
                     const float* bias, float* x_heads, float* y_heads, ThreadPool& pool) {
  if (T <= 0 || H <= 0 || b <= 0) return;
  const int64_t L = H * b;
  const Plan plan = ChoosePlan(WeightFormat::F32, T);
  // Whole heads per thread: one hand-off for all H products.
  pool.ParallelFor(H, 1, [&](int64_t h0, int64_t h1, int) {
    for (int64_t hd = h0; hd < h1; ++hd) {
      float* xh = x_heads + hd * T * b;  // [T, b]
      float* yh = y_heads + hd * T * b;  // [T, b]
      for (int64_t t = 0; t < T; ++t) std::copy(x + t * L + hd * b, x + t * L + (hd + 1) * b, xh + t * b);
      const WeightMatrix m{WeightFormat::F32, b, b, w + hd * b * b};
      plan.Rows(m, 0, b, xh, T, yh, b, bias ? bias + hd * b : nullptr);
      for (int64_t t = 0; t < T; ++t) std::copy(yh + t * b, yh + (t + 1) * b, y + t * L + hd * b);
    }
  });
}

}  // namespace rg
