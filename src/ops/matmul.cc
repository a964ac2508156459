// MatMul dispatcher: picks the kernel set for the active ISA level and weight
// format, chooses skinny (decode) or packed GEMM (prefill) by T, and splits
// output rows across the pool. Also the generic blocked GEMM driver.
#include "ops/matmul.h"

#include <algorithm>

#include "core/error.h"
#include "ops/cpu_features.h"
#include "ops/matmul_kernels.h"
#include "ops/quant.h"
#include "ops/quant_matmul.h"

namespace rg {
namespace mm {

size_t GemmWorkBytes(const GemmSpec& s) {
  const size_t units_kc = size_t((s.kc + s.kstep - 1) / s.kstep);
  return units_kc * size_t(s.mr) * 4 + units_kc * size_t(s.nc_max) * 4;
}

void GemmRows(const GemmSpec& s, const void* w, int64_t cols, int64_t r0, int64_t r1,
              const float* x, int64_t T, float* y, int64_t ldy, const float* bias, uint8_t* work) {
  const int64_t units_kc = (s.kc + s.kstep - 1) / s.kstep;
  // Buffers sized for the largest block, so their size never depends on T.
  uint8_t* wp = work;                                   // [units_kc, mr] units
  uint8_t* xp = work + size_t(units_kc) * s.mr * 4;     // [panels][units, nr] units
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

// Below this many multiply-adds per piece, splitting across threads costs
// more than it saves.
constexpr int64_t kMinMacsPerPiece = 1 << 16;

int64_t Grain(int64_t unit, int64_t macs_per_row) {
  const int64_t rows = (kMinMacsPerPiece + macs_per_row - 1) / std::max<int64_t>(1, macs_per_row);
  return std::max<int64_t>(1, (rows + unit - 1) / unit) * unit;
}

// The kernel one F32/BF16 product runs: a blocked GEMM, or the skinny
// (few-token) kernel.
struct Plan {
  const mm::GemmSpec* gemm = nullptr;
  mm::SkinnyFn skinny = nullptr;
  size_t work_bytes = 0;  // per thread
  int64_t row_unit = 4;   // rows per piece are a multiple of this

  void Rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t T, float* y,
            int64_t ldy, const float* bias, uint8_t* work) const {
    if (gemm) mm::GemmRows(*gemm, w.data, w.cols, r0, r1, x, T, y, ldy, bias, work);
    else skinny(w.data, w.cols, r0, r1, x, T, y, ldy, bias, work);
  }
};

Plan ChoosePlan(const KernelContext& ctx, WeightFormat format, int64_t cols, int64_t T) {
  const KernelTable& table = Kernels(ctx.isa());
  const mm::FormatKernels* k = format == WeightFormat::F32 ? &table.f32 : &table.bf16;
  const int64_t gemm_min_t = ctx.options().gemm_min_t > 0 ? ctx.options().gemm_min_t : k->gemm_min_t;
  Plan p;
  if (ctx.precision() == MatMulPrecision::kFast && k->skinny_fast && T >= k->fast_min_t) {
    p.skinny = k->skinny_fast;
    p.work_bytes = k->skinny_fast_bytes ? k->skinny_fast_bytes(cols, T) : 0;
  } else if (k->gemm && T >= gemm_min_t) {
    p.gemm = k->gemm;
    p.row_unit = p.gemm->mr;
    p.work_bytes = mm::GemmWorkBytes(*p.gemm);
  } else {
    p.skinny = k->skinny;
    p.work_bytes = k->skinny_bytes ? k->skinny_bytes(cols, T) : 0;
  }
  return p;
}

void FillBias(int64_t rows, int64_t T, float* y, int64_t ldy, const float* bias) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] = bias ? bias[r] : 0.f;
}

}  // namespace

size_t mm::MatMulWorkBytes(Isa isa, int64_t cols, int64_t T) {
  size_t most = 0;
  const KernelTable& t = Kernels(isa);
  for (const FormatKernels* k : {&t.f32, &t.bf16}) {
    if (k->skinny_bytes) most = std::max(most, k->skinny_bytes(cols, T));
    if (k->skinny_fast_bytes) most = std::max(most, k->skinny_fast_bytes(cols, T));
    if (k->gemm) most = std::max(most, GemmWorkBytes(*k->gemm));
  }
  return most;
}

void MatMul(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias,
            KernelContext& ctx) {
  if (T <= 0 || w.rows <= 0) return;
  switch (w.format) {
    case WeightFormat::F32:
    case WeightFormat::BF16: break;
    default:
      RG_CHECK(IsQuantizedFormat(w.format), "MatMul: unknown weight format ", int(w.format));
      MatMulQuantized(w, x, T, y, bias, ctx);
      return;
  }
  if (w.cols <= 0) return FillBias(w.rows, T, y, w.rows, bias);  // empty sums: y = bias
  const Plan plan = ChoosePlan(ctx, w.format, w.cols, T);
  ctx.pool().ParallelFor(w.rows, Grain(plan.row_unit, w.cols * T), [&](int64_t r0, int64_t r1, int th) {
    plan.Rows(w, r0, r1, x, T, y, w.rows, bias, ctx.PerThread(th, plan.work_bytes));
  });
}

void MatMulShared(std::span<const MatMulTarget> targets, const float* x, int64_t T, KernelContext& ctx) {
  bool shared = !targets.empty() && T > 0 && IsQuantizedFormat(targets[0].w->format);
  for (const MatMulTarget& tg : targets)
    shared = shared && tg.w->format == targets[0].w->format && tg.w->cols == targets[0].w->cols && tg.w->rows > 0;
  if (shared) return MatMulQuantizedShared(targets, x, T, ctx);
  for (const MatMulTarget& tg : targets) MatMul(*tg.w, x, T, tg.y, tg.bias, ctx);
}

}  // namespace rg
