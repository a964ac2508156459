// The block formats Q8 / Q4 / Q8_256 / Q4_256 (ops/quant.h) and their matmul
// kernels (ops/quant_matmul.h): layout, quantization error, every ISA level
// against the scalar oracle, the oracle against the f32 product, determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/threads.h"
#include "ops/block_diag.h"
#include "ops/cpu_features.h"
#include "ops/matmul.h"
#include "ops/quant.h"
#include "ops/quant_matmul.h"
#include "test_random.h"

namespace rg {
namespace {

using test::Gaussian;

constexpr WeightFormat kFormats[] = {WeightFormat::Q8, WeightFormat::Q4, WeightFormat::Q8_256,
                                     WeightFormat::Q4_256};

// Decoder written from the layout comment in quant.h, independent of quant.cc.
struct Decoded {
  float scale;
  int level;
};
Decoded DecodeByDoc(WeightFormat f, const uint8_t* data, int64_t cols, int64_t r, int64_t c) {
  const bool q4 = f == WeightFormat::Q4 || f == WeightFormat::Q4_256;
  const int kb = f == WeightFormat::Q8 || f == WeightFormat::Q4 ? 32 : 256;
  const int header = kb == 32 ? 32 : 64;
  const int64_t nb = (cols + kb - 1) / kb;
  const size_t bb = size_t(header) + 16 * kb * (q4 ? 4 : 8) / 8;
  const uint8_t* blk = data + size_t(r / 16) * nb * bb + size_t(c / kb) * bb;
  const int i = int(r % 16), cc = int(c % kb), j = cc / 4, e = cc % 4;
  const float d = F16ToF32(uint16_t(blk[2 * i] | (blk[2 * i + 1] << 8)));
  if (!q4) return {d, int(int8_t(blk[header + 64 * j + 4 * i + e]))};
  const int k = (blk[header + 64 * (j / 2) + 4 * i + e] >> (4 * (j % 2))) & 15;
  return {d, int(kQ4Codebook[k])};
}

std::vector<uint8_t> Quantize(WeightFormat f, const std::vector<float>& w, int64_t rows,
                              int64_t cols, int threads = 2) {
  ThreadPool pool(threads);
  std::vector<uint8_t> q(QuantizedBytes(f, rows, cols));
  QuantizeMatrix(f, w.data(), rows, cols, q.data(), pool);
  return q;
}

// The levels the int8 kernels can run at on this CPU.
std::vector<Isa> Isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (Int8KernelIsa(i) == i) v.push_back(i);
  return v;
}

KernelOptions AtLevel(Isa isa) {
  KernelOptions o;
  o.isa = isa;
  return o;
}

bool BitwiseEqual(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(QuantFormat, Sizes) {
  EXPECT_EQ(QuantBlockBytes(WeightFormat::Q8), 544u);
  EXPECT_EQ(QuantBlockBytes(WeightFormat::Q4), 288u);
  EXPECT_EQ(QuantBlockBytes(WeightFormat::Q8_256), 4160u);
  EXPECT_EQ(QuantBlockBytes(WeightFormat::Q4_256), 2112u);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q8_256, 17, 257), 2u * 2u * 4160u);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q4_256, 2560, 7680), 160u * 30u * 2112u);
  // 8.125 and 4.125 bits per weight on aligned shapes.
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q8_256, 256, 256) * 8, 256u * 256u * 65 / 8);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q4_256, 256, 256) * 8, 256u * 256u * 33 / 8);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q8, 16, 32), 544u);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q8, 17, 33), 2u * 2u * 544u);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q4, 2560, 7680), 160u * 240u * 288u);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q4, 0, 7), 0u);
  // 8.5 and 4.5 bits per weight on aligned shapes.
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q8, 256, 256) * 8, 256u * 256u * 17 / 2);
  EXPECT_EQ(QuantizedBytes(WeightFormat::Q4, 256, 256) * 8, 256u * 256u * 9 / 2);
}

TEST(QuantFormat, F16ConversionRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(quant_internal::F32ToF16(f))));
      continue;
    }
    ASSERT_EQ(quant_internal::F32ToF16(f), h) << h;
  }
  // Halfway cases between neighbours go to the even one; anything past halfway rounds away.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const double lo = F16ToF32(uint16_t(h)), hi = F16ToF32(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // exact in float
    const uint16_t even = (h % 2 == 0) ? uint16_t(h) : uint16_t(h + 1);
    ASSERT_EQ(quant_internal::F32ToF16(mid), even) << h;
    ASSERT_EQ(quant_internal::F32ToF16(std::nextafter(mid, 1e9f)), h + 1) << h;
    ASSERT_EQ(quant_internal::F32ToF16(std::nextafter(mid, -1e9f)), h) << h;
  }
  EXPECT_EQ(quant_internal::F32ToF16(65520.f), 0x7c00);  // rounds to inf
  EXPECT_EQ(quant_internal::F32ToF16(-1.f), 0xbc00);
}

TEST(QuantFormat, Q8LayoutExactValues) {
  // Each row block holds d * q with q in [-127, 127] and one |q| = 127, d a
  // power of two: Q8 stores exactly (d, q) at the documented offsets.
  for (auto [f, kb] : {std::pair{WeightFormat::Q8, 32}, std::pair{WeightFormat::Q8_256, 256}}) {
    const int64_t rows = 19, cols = kb * 2 + 6;
    std::vector<float> w(rows * cols);
    std::mt19937 rng(3);
    std::vector<int> qs(w.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        int q = int(rng() % 255) - 127;
        if (c % kb == 5) q = (r % 2) ? 127 : -127;
        qs[r * cols + c] = q;
        w[r * cols + c] = std::ldexp(float(q), -int(r % 7));
      }
    const auto bytes = Quantize(f, w, rows, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const Decoded d = DecodeByDoc(f, bytes.data(), cols, r, c);
        ASSERT_EQ(d.scale, std::ldexp(1.f, -int(r % 7))) << r << "," << c;
        ASSERT_EQ(d.level, qs[r * cols + c]) << r << "," << c;
      }
    // Padding: columns cols..3*kb-1 of every row and rows 19..31 hold zero bytes.
    for (int64_t r = 0; r < 32; ++r)
      for (int64_t c = (r < rows ? cols : 0); c < 3 * kb; ++c) {
        const Decoded d = DecodeByDoc(f, bytes.data(), cols, r, c);
        ASSERT_EQ(d.level, 0) << r << "," << c;
        if (r >= rows) {
          ASSERT_EQ(d.scale, 0.f);
        }
      }
    // The header pad of the 256-column blocks is zero.
    if (kb == 256) {
      for (size_t b = 0; b < bytes.size(); b += QuantBlockBytes(f)) {
        for (size_t k = 32; k < 64; ++k) ASSERT_EQ(bytes[b + k], 0) << b;
      }
    }
  }
}

TEST(QuantFormat, DequantizeRowFollowsDocumentedLayout) {
  for (WeightFormat f : kFormats) {
    const int64_t rows = 33, cols = 521;
    const auto w = Gaussian(rows * cols, 7);
    auto bytes = Quantize(f, w, rows, cols);
    // Unaligned base, as in an mmapped file.
    std::vector<uint8_t> shifted(bytes.size() + 3);
    std::memcpy(shifted.data() + 3, bytes.data(), bytes.size());
    const WeightMatrix m{f, rows, cols, shifted.data() + 3};
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(m, r, row.data());
      for (int64_t c = 0; c < cols; ++c) {
        const Decoded d = DecodeByDoc(f, bytes.data(), cols, r, c);
        ASSERT_EQ(row[c], d.scale * float(d.level)) << WeightFormatName(f) << " " << r << "," << c;
      }
    }
  }
}

TEST(QuantFormat, Q8ErrorAtMostHalfScale) {
  for (auto [f, kb] : {std::pair{WeightFormat::Q8, 32}, std::pair{WeightFormat::Q8_256, 256}})
  for (int64_t cols : {1, 31, 32, 33, 100, 257, 2560}) {
    const int64_t rows = 17;
    auto w = Gaussian(rows * cols, uint32_t(cols), 0.05f);
    w[0] = 3.f;  // one large outlier
    const auto bytes = Quantize(f, w, rows, cols);
    const WeightMatrix m{f, rows, cols, bytes.data()};
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(m, r, row.data());
      for (int64_t c = 0; c < cols; ++c) {
        const float d = DecodeByDoc(f, bytes.data(), cols, r, c).scale;
        float amax = 0.f;
        for (int64_t c2 = c / kb * kb; c2 < std::min<int64_t>(cols, c / kb * kb + kb); ++c2)
          amax = std::max(amax, std::fabs(w[r * cols + c2]));
        // Scale = max|w| / 127 rounded up to binary16: at most one binary16 ulp
        // above (2^-10 relative for normal scales, 2^-24 absolute for subnormal ones).
        ASSERT_GE(double(d) * 127, double(amax) * (1 - 1e-7));
        ASSERT_LE(double(d), double(amax) / 127 * (1 + 1.0 / 1024) + std::ldexp(1.0, -24));
        // Bound: |W - w| <= d / 2, plus float rounding of w / d and of d * q (2^-23 relative).
        ASSERT_LE(std::fabs(row[c] - w[r * cols + c]), 0.5f * d + std::fabs(w[r * cols + c]) * 2.4e-7f)
            << r << "," << c;
      }
    }
  }
}

struct ErrStats {
  double rel_rms, max_abs_over_scale;
};
ErrStats MeasureError(WeightFormat f, const std::vector<float>& w, int64_t rows, int64_t cols) {
  const auto bytes = Quantize(f, w, rows, cols);
  const WeightMatrix m{f, rows, cols, bytes.data()};
  std::vector<float> row(cols);
  double se = 0, ss = 0, worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(m, r, row.data());
    for (int64_t c = 0; c < cols; ++c) {
      const double e = row[c] - w[r * cols + c];
      se += e * e;
      ss += double(w[r * cols + c]) * w[r * cols + c];
      const float d = std::fabs(DecodeByDoc(f, bytes.data(), cols, r, c).scale);
      worst = std::max(worst, std::fabs(e) / d);
    }
  }
  return {std::sqrt(se / ss), worst};
}

TEST(QuantFormat, ErrorOnGaussianWeights) {
  const int64_t rows = 256, cols = 1024;
  const auto w = Gaussian(rows * cols, 11, 0.02f);
  const ErrStats q8 = MeasureError(WeightFormat::Q8, w, rows, cols);
  const ErrStats q4 = MeasureError(WeightFormat::Q4, w, rows, cols);
  const ErrStats q8w = MeasureError(WeightFormat::Q8_256, w, rows, cols);
  const ErrStats q4w = MeasureError(WeightFormat::Q4_256, w, rows, cols);
  // q4_0-style reference (same 4.5 bits): d = max/-8, levels -8..7.
  double se = 0, ss = 0;
  for (size_t b = 0; b < w.size(); b += 32) {
    float vmax = 0;
    for (size_t i = b; i < b + 32; ++i)
      if (std::fabs(w[i]) > std::fabs(vmax)) vmax = w[i];
    const float d = vmax / -8.f;
    for (size_t i = b; i < b + 32; ++i) {
      const float q = std::min(7.f, std::max(-8.f, std::nearbyint(w[i] / d)));
      se += double(w[i] - q * d) * (w[i] - q * d);
      ss += double(w[i]) * w[i];
    }
  }
  const double q40 = std::sqrt(se / ss);
  std::printf("relative RMS error on N(0, 0.02^2): Q8 %.5f  Q4 %.5f  (q4_0 reference %.5f)\n",
              q8.rel_rms, q4.rel_rms, q40);
  std::printf("max |error| / |scale|: Q8 %.3f  Q4 %.2f\n", q8.max_abs_over_scale,
              q4.max_abs_over_scale);
  std::printf("256-column blocks: Q8_256 %.5f (max/scale %.3f)  Q4_256 %.5f\n", q8w.rel_rms,
              q8w.max_abs_over_scale, q4w.rel_rms);
  EXPECT_LT(q8w.rel_rms, 0.0080);  // measured 0.0070: the block max is ~2.9 sigma instead of ~2.2
  EXPECT_LE(q8w.max_abs_over_scale, 0.5 + 1e-5);
  EXPECT_LT(q4w.rel_rms, 0.095);   // measured 0.092
  EXPECT_LT(q8.rel_rms, 0.0060);  // measured 0.0054
  EXPECT_LE(q8.max_abs_over_scale, 0.5 + 1e-5);
  EXPECT_LT(q4.rel_rms, 0.078);  // measured ~0.075
  EXPECT_LT(q4.rel_rms, 0.9 * q40);
  // The largest codebook half-gap is 19 levels; a clipped extreme can lie
  // at most 127/0.8 - 127 ~ 32 levels out.
  EXPECT_LE(q4.max_abs_over_scale, 32.0);
}

TEST(QuantFormat, BF16SourceMatchesF32AndThreadCountIrrelevant) {
  for (WeightFormat f : kFormats) {
    const int64_t rows = 37, cols = 100;
    auto w = Gaussian(rows * cols, 5);
    std::vector<uint16_t> bf(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      bf[i] = F32ToBF16(w[i]);
      w[i] = BF16ToF32(bf[i]);
    }
    const auto a = Quantize(f, w, rows, cols, 1);
    const auto b = Quantize(f, w, rows, cols, 3);
    ThreadPool pool(2);
    std::vector<uint8_t> c(a.size());
    QuantizeMatrixBF16(f, bf.data(), rows, cols, c.data(), pool);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, c);
  }
}

TEST(QuantFormat, RejectsNonFiniteAndHugeWeights) {
  ThreadPool pool(2);
  for (WeightFormat f : kFormats) {
    std::vector<float> w(40 * 40, 0.5f);
    std::vector<uint8_t> q(QuantizedBytes(f, 40, 40));
    w[39 * 40 + 3] = NAN;
    EXPECT_THROW(QuantizeMatrix(f, w.data(), 40, 40, q.data(), pool), Error);
    w[39 * 40 + 3] = INFINITY;
    EXPECT_THROW(QuantizeMatrix(f, w.data(), 40, 40, q.data(), pool), Error);
    w[39 * 40 + 3] = 1e10f;
    EXPECT_THROW(QuantizeMatrix(f, w.data(), 40, 40, q.data(), pool), Error);
  }
  std::vector<float> w(32, 1.f);
  std::vector<uint8_t> q(1000);
  EXPECT_THROW(QuantizeMatrix(WeightFormat::F32, w.data(), 1, 32, q.data(), pool), Error);
}

TEST(QuantFormat, ZeroBlocksAndTinyValues) {
  for (WeightFormat f : kFormats) {
    const int kb = QuantBlockCols(f);
    std::vector<float> w(2 * 2 * kb, 0.f);
    for (int c = kb; c < 2 * kb; ++c) w[c] = 1e-9f * float((c - kb) % 32 - 8);  // below binary16 range
    const auto bytes = Quantize(f, w, 2, 2 * kb);
    const WeightMatrix m{f, 2, 2 * kb, bytes.data()};
    std::vector<float> row(2 * kb);
    for (int r = 0; r < 2; ++r) {
      DequantizeRow(m, r, row.data());
      for (int c = 0; c < 2 * kb; ++c) EXPECT_NEAR(row[c], w[r * 2 * kb + c], 1e-7f);
    }
  }
}

// The RG-LRU gates of the _256 formats: H heads [b, b] stacked as [H*b, b].
TEST(BlockDiagQuantized, EveryIsaMatchesScalarOracleBitwise) {
  // The same kernels as above on per-head segments of x: tolerance zero.
  ThreadPool pool1(1), pool2(2);
  int cases = 0;
  for (WeightFormat f : kFormats)
    for (int64_t H : {1, 2, 3, 10})
      for (int64_t b : {16, 48, 96, 256, 272})
        for (int64_t T : {1, 2, 5, 12, 13, 23}) {
          if (H * b * b * T > 1'500'000) continue;  // keep the oracle quick
          const uint32_t seed = uint32_t(H * 7919 + b * 101 + T);
          const int64_t L = H * b;
          auto x = Gaussian(T * L, seed + 1);
          for (int64_t c = 0; c < b; ++c) x[c] = 0.f;  // a zero head of token 0
          if (T > 1) x[L] *= 1000.f;                    // a wide range in one head only
          const auto bias = Gaussian(L, seed + 2);
          // Two products of the same x, as the two gates.
          std::vector<std::vector<uint8_t>> packed;
          for (uint32_t g = 0; g < 2; ++g) {
            const auto w = Gaussian(H * b * b, seed + 3 + g, 0.1f);
            packed.emplace_back(QuantizedBytes(f, L, b));
            QuantizeBlockDiag(f, w.data(), H, b, packed.back().data(), pool2);
          }
          const WeightMatrix m0{f, L, b, packed[0].data()}, m1{f, L, b, packed[1].data()};
          const float* bb = (T % 2) ? bias.data() : nullptr;
          std::vector<float> want0(T * L), want1(T * L);
          BlockDiagMatMulQuantizedScalar(m0, x.data(), T, H, want0.data(), bb);
          BlockDiagMatMulQuantizedScalar(m1, x.data(), T, H, want1.data(), nullptr);
          for (Isa isa : Isas())
            for (ThreadPool* pool : {&pool1, &pool2}) {
              KernelContext ctx(*pool, AtLevel(isa));
              std::vector<float> got0(T * L, -7.f), got1(T * L, -7.f);
              const MatMulTarget targets[] = {{&m0, got0.data(), bb}, {&m1, got1.data(), nullptr}};
              BlockDiagMatMulQuantized(targets, x.data(), T, H, ctx);
              for (int64_t i = 0; i < T * L; ++i) {
                ASSERT_TRUE(BitwiseEqual(got0[i], want0[i]) && BitwiseEqual(got1[i], want1[i]))
                    << WeightFormatName(f) << " " << IsaName(isa) << " threads " << pool->size() << " H " << H
                    << " b " << b << " T " << T << " at t " << i / L << " col " << i % L << ": " << got0[i]
                    << " vs " << want0[i] << ", " << got1[i] << " vs " << want1[i];
              }
              ++cases;
            }
        }
  std::printf("%d (format, shape, isa, pool) block-diagonal cases bitwise equal\n", cases);
}

TEST(BlockDiagQuantized, RowsDoNotDependOnT) {
  // Prefill = decode for the gates: T rows in one call give bitwise the rows
  // of T one-row calls, at every ISA (the tile changes with T; the order of
  // every output's sum does not).
  ThreadPool pool(2);
  for (WeightFormat f : kFormats)
    for (int64_t T : {2, 5, 13, 23}) {
      const int64_t H = 3, b = 96, L = H * b;
      const auto w = Gaussian(H * b * b, uint32_t(T), 0.1f);
      const auto x = Gaussian(T * L, uint32_t(T) + 1);
      const auto bias = Gaussian(L, uint32_t(T) + 2);
      std::vector<uint8_t> packed(QuantizedBytes(f, L, b));
      QuantizeBlockDiag(f, w.data(), H, b, packed.data(), pool);
      const WeightMatrix m{f, L, b, packed.data()};
      for (Isa isa : Isas()) {
        KernelContext ctx(pool, AtLevel(isa));
        std::vector<float> all(T * L), one(T * L);
        const MatMulTarget t_all{&m, all.data(), bias.data()};
        BlockDiagMatMulQuantized(std::span<const MatMulTarget>(&t_all, 1), x.data(), T, H, ctx);
        for (int64_t t = 0; t < T; ++t) {
          const MatMulTarget t_one{&m, one.data() + t * L, bias.data()};
          BlockDiagMatMulQuantized(std::span<const MatMulTarget>(&t_one, 1), x.data() + t * L, 1, H, ctx);
        }
        for (int64_t i = 0; i < T * L; ++i)
          ASSERT_TRUE(BitwiseEqual(all[i], one[i])) << WeightFormatName(f) << " " << IsaName(isa) << " T " << T
                                                    << " at t " << i / L << " col " << i % L;
      }
    }
}

TEST(BlockDiagQuantized, OracleIsTheBlockDiagonalProduct) {
  // Against the f32 gate product of the checkpoint's layout: only the
  // quantization error remains. With both operands at 8 bits the error of an
  // output is a small multiple of sqrt(b) * 2^-8 * |w| |x| (here ~0.02 for
  // b = 96); 4-bit codebook levels are ~10x coarser. A transposed block or a
  // head reading another head's inputs would be off by O(1).
  ThreadPool pool(2);
  const int64_t H = 3, b = 96, T = 4, L = H * b;
  const auto w = Gaussian(H * b * b, 11, 0.1f);  // [H, b_in, b_out]
  const auto x = Gaussian(T * L, 12);
  const auto bias = Gaussian(L, 13);
  std::vector<float> want(T * L);
  BlockDiagMatMulScalar(w.data(), x.data(), T, H, b, want.data(), bias.data());
  for (WeightFormat f : kFormats) {
    std::vector<uint8_t> packed(QuantizedBytes(f, L, b));
    QuantizeBlockDiag(f, w.data(), H, b, packed.data(), pool);
    std::vector<float> got(T * L);
    BlockDiagMatMulQuantizedScalar(WeightMatrix{f, L, b, packed.data()}, x.data(), T, H, got.data(), bias.data());
    const float tol = IsQ4Family(f) ? 0.5f : 0.06f;
    double err = 0.;
    for (int64_t i = 0; i < T * L; ++i) {
      ASSERT_NEAR(got[i], want[i], tol) << WeightFormatName(f) << " t " << i / L << " col " << i % L;
      err = std::max(err, double(std::fabs(got[i] - want[i])));
    }
    std::printf("%s: largest |quantized - f32| %.4f\n", WeightFormatName(f), err);
  }
}

TEST(BlockDiagQuantized, BadShapesAreNamed) {
  ThreadPool pool(1);
  KernelContext ctx(pool);
  std::vector<uint8_t> packed(QuantizedBytes(WeightFormat::Q8_256, 2 * 24, 24));
  const WeightMatrix m{WeightFormat::Q8_256, 2 * 24, 24, packed.data()};
  std::vector<float> x(2 * 24), y(2 * 24);
  const MatMulTarget t{&m, y.data(), nullptr};
  try {
    BlockDiagMatMulQuantized(std::span<const MatMulTarget>(&t, 1), x.data(), 1, 2, ctx);
    FAIL() << "b = 24 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block width 24 is not a multiple of 16"), std::string::npos) << e.what();
  }
  try {
    BlockDiagMatMulQuantized(std::span<const MatMulTarget>(&t, 1), x.data(), 1, 3, ctx);
    FAIL() << "H = 3 accepted for 48 rows";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("are not 3 heads of [24, 24]"), std::string::npos) << e.what();
  }
  std::vector<float> w(2 * 24 * 24);
  EXPECT_THROW(QuantizeBlockDiag(WeightFormat::Q8_256, w.data(), 2, 24, packed.data(), pool), Error);
}

TEST(QuantMatMul, EveryIsaMatchesScalarOracleBitwise) {
  // Every step of the math is exact integer arithmetic or the same float
  // operation in the same order, so the tolerance is zero: bitwise equality.
  ThreadPool pool1(1), pool2(2);
  const auto isas = Isas();
  std::printf("int8 kernel levels on this CPU:");
  for (Isa i : isas) std::printf(" %s", IsaName(i));
  std::printf(" (best: %s)\n", IsaName(Int8KernelIsa(ActiveIsa())));
  int cases = 0;
  for (WeightFormat f : kFormats)
    for (int64_t rows : {1, 3, 17, 33, 130})
      for (int64_t cols : {1, 31, 32, 33, 100, 257, 511, 2560})
        for (int64_t T : {1, 2, 5, 12, 13, 15, 16, 22, 23, 33, 100}) {
          if (rows * cols * T > 4'000'000 && rows > 33) continue;  // keep the oracle quick
          const uint32_t seed = uint32_t(rows * 1000003 + cols * 101 + T);
          const auto w = Gaussian(rows * cols, seed, 0.1f);
          auto x = Gaussian(T * cols, seed + 1);
          // Some structure: a zero token block, and a wide dynamic range.
          for (int64_t c = 0; c < std::min<int64_t>(cols, 32); ++c) x[c] = 0.f;
          if (T > 1) x[cols] *= 1000.f;
          const auto bias = Gaussian(rows, seed + 2);
          // Unaligned weight bytes.
          const auto packed = Quantize(f, w, rows, cols);
          std::vector<uint8_t> buf(packed.size() + 1);
          std::memcpy(buf.data() + 1, packed.data(), packed.size());
          const WeightMatrix m{f, rows, cols, buf.data() + 1};
          const float* b = (T % 2) ? bias.data() : nullptr;
          std::vector<float> want(T * rows);
          MatMulQuantizedScalar(m, x.data(), T, want.data(), b);
          for (Isa isa : isas)
            for (ThreadPool* pool : {&pool1, &pool2}) {
              KernelContext ctx(*pool, AtLevel(isa));
              std::vector<float> got(T * rows, -7.f);
              MatMulQuantized(m, x.data(), T, got.data(), b, ctx);
              for (int64_t i = 0; i < T * rows; ++i)
                ASSERT_TRUE(BitwiseEqual(got[i], want[i]))
                    << WeightFormatName(f) << " " << IsaName(isa) << " threads "
                    << pool->size() << " rows " << rows << " cols " << cols << " T " << T
                    << " at t " << i / rows << " r " << i % rows << ": " << got[i] << " vs "
                    << want[i];
              ++cases;
            }
        }
  std::printf("%d (format, shape, isa, pool) cases bitwise equal\n", cases);
}

TEST(QuantMatMul, OracleMatchesF32OnDequantizedWeights) {
  // y_q - y_f = sum_c W[r,c] (xhat_c - x_c) with |xhat_c - x_c| <= s_x(block)/2,
  // plus float rounding: |err| <= sum_c |W[r,c]| s_x/2 * (1 + 1e-5) + 1e-5 * sum_c |W x|.
  for (WeightFormat f : kFormats)
    for (int64_t cols : {1, 33, 257, 2560}) {
      const int64_t rows = 33, T = 5;
      const int64_t kb = QuantBlockCols(f);
      const auto w = Gaussian(rows * cols, uint32_t(cols), 0.1f);
      const auto x = Gaussian(T * cols, uint32_t(cols) + 9);
      const auto bytes = Quantize(f, w, rows, cols);
      const WeightMatrix m{f, rows, cols, bytes.data()};
      std::vector<float> wd(rows * cols);
      for (int64_t r = 0; r < rows; ++r) DequantizeRow(m, r, wd.data() + r * cols);
      std::vector<float> yq(T * rows), yf(T * rows);
      MatMulQuantizedScalar(m, x.data(), T, yq.data(), nullptr);
      MatMulScalar(WeightMatrix{WeightFormat::F32, rows, cols, wd.data()}, x.data(), T, yf.data(),
                   nullptr);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double bound = 0, mag = 0;
          for (int64_t b0 = 0; b0 < cols; b0 += kb) {
            float amax = 0;
            for (int64_t c = b0; c < std::min(cols, b0 + kb); ++c)
              amax = std::max(amax, std::fabs(x[t * cols + c]));
            for (int64_t c = b0; c < std::min(cols, b0 + kb); ++c) {
              bound += std::fabs(wd[r * cols + c]) * (amax / 127.f) / 2;
              mag += std::fabs(wd[r * cols + c] * x[t * cols + c]);
            }
          }
          ASSERT_LE(std::fabs(yq[t * rows + r] - yf[t * rows + r]), bound * (1 + 1e-5) + 1e-5 * mag)
              << WeightFormatName(f) << " cols " << cols << " t " << t << " r " << r;
        }
    }
}

TEST(QuantMatMul, DeterministicAcrossThreadCounts) {
  ThreadPool p1(1), p2(2), p3(3);
  KernelContext c1(p1), c2(p2), c3(p3);
  for (WeightFormat f : kFormats) {
    const int64_t rows = 301, cols = 640;
    const auto w = Gaussian(rows * cols, 21, 0.1f);
    const auto x = Gaussian(64 * cols, 22);
    const auto bytes = Quantize(f, w, rows, cols);
    const WeightMatrix m{f, rows, cols, bytes.data()};
    for (int64_t T : {1, 3, 64}) {
      std::vector<float> a(T * rows), b(T * rows), c(T * rows), d(T * rows);
      MatMulQuantized(m, x.data(), T, a.data(), nullptr, c1);
      MatMulQuantized(m, x.data(), T, b.data(), nullptr, c2);
      MatMulQuantized(m, x.data(), T, c.data(), nullptr, c3);
      MatMulQuantized(m, x.data(), T, d.data(), nullptr, c2);
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << T;
      EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4)) << T;
      EXPECT_EQ(0, std::memcmp(a.data(), d.data(), a.size() * 4)) << T;
    }
  }
}

TEST(QuantMatMul, DecodeRowsEqualPrefillRows) {
  // A token's output does not depend on the other tokens in the call.
  ThreadPool pool(2);
  KernelContext ctx(pool);
  const int64_t rows = 70, cols = 300, T = 19;
  const auto w = Gaussian(rows * cols, 31, 0.1f);
  const auto x = Gaussian(T * cols, 32);
  for (WeightFormat f : kFormats) {
    const auto bytes = Quantize(f, w, rows, cols);
    const WeightMatrix m{f, rows, cols, bytes.data()};
    std::vector<float> all(T * rows), one(rows);
    MatMulQuantized(m, x.data(), T, all.data(), nullptr, ctx);
    for (int64_t t = 0; t < T; ++t) {
      MatMulQuantized(m, x.data() + t * cols, 1, one.data(), nullptr, ctx);
      EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * rows, rows * 4)) << t;
    }
  }
}

TEST(QuantMatMul, RowSliceIsAMatrix) {
  ThreadPool pool(2);
  KernelContext ctx(pool);
  const int64_t rows = 70, cols = 296, T = 3;
  const auto w = Gaussian(rows * cols, 41, 0.1f);
  const auto x = Gaussian(T * cols, 42);
  for (WeightFormat f : kFormats) {
    const auto bytes = Quantize(f, w, rows, cols);
    const WeightMatrix m{f, rows, cols, bytes.data()};
    const WeightMatrix s = QuantizedRowSlice(m, 16, 45);
    std::vector<float> full(T * rows), part(T * 29);
    MatMulQuantized(m, x.data(), T, full.data(), nullptr, ctx);
    MatMulQuantized(s, x.data(), T, part.data(), nullptr, ctx);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < 29; ++r) EXPECT_EQ(part[t * 29 + r], full[t * rows + 16 + r]);
    EXPECT_THROW(QuantizedRowSlice(m, 8, 20), Error);
  }
}

TEST(QuantMatMul, NonFiniteActivationsGiveNaN) {
  ThreadPool pool(2);
  const int64_t rows = 20, cols = 300;
  const auto w = Gaussian(rows * cols, 51, 0.1f);
  for (WeightFormat f : kFormats) {
    const auto bytes = Quantize(f, w, rows, cols);
    const WeightMatrix m{f, rows, cols, bytes.data()};
    for (float bad : {NAN, INFINITY}) {
      auto x = Gaussian(2 * cols, 52);
      x[cols + 40] = bad;
      for (Isa isa : Isas()) {
        KernelContext ctx(pool, AtLevel(isa));
        std::vector<float> y(2 * rows);
        MatMulQuantized(m, x.data(), 2, y.data(), nullptr, ctx);
        for (int64_t r = 0; r < rows; ++r) {
          EXPECT_TRUE(std::isfinite(y[r])) << IsaName(isa);
          EXPECT_TRUE(std::isnan(y[rows + r])) << IsaName(isa);
        }
      }
    }
  }
}

TEST(QuantMatMul, EmptyShapes) {
  ThreadPool pool(2);
  const WeightMatrix none{WeightFormat::Q8, 5, 0, nullptr};
  const float x[2] = {0, 0};
  const float bias[5] = {1, 2, 3, 4, 5};
  std::vector<float> y(10, -1.f);
  for (Isa isa : Isas()) {
    KernelContext ctx(pool, AtLevel(isa));
    MatMulQuantized(none, x, 2, y.data(), bias, ctx);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(y[i], bias[i % 5]);
  }
  KernelContext ctx(pool);
  MatMulQuantized(WeightMatrix{WeightFormat::Q4, 0, 32, nullptr}, x, 1, y.data(), nullptr, ctx);
  EXPECT_THROW(MatMulQuantized(WeightMatrix{WeightFormat::F32, 1, 1, x}, x, 1, y.data(), nullptr, ctx),
               Error);
}

}  // namespace
}  // namespace rg

namespace rg {
namespace {

// MatMulShared over products of one format (one quantization of x, one
// hand-off) equals separate MatMul calls bitwise, at every quantized ISA and
// thread count; products of mixed formats fall back to separate calls.
TEST(QuantMatMul, SharedActivationsEqualSeparateProducts) {
  const int64_t cols = 200;
  const int64_t rows[] = {37, 16, 70};
  for (Isa isa : Isas()) {
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      KernelContext ctx(pool, AtLevel(isa));
      for (WeightFormat f : kFormats) {
        std::vector<std::vector<uint8_t>> bytes;
        std::vector<WeightMatrix> m;
        std::vector<std::vector<float>> bias;
        for (int i = 0; i < 3; ++i) {
          bytes.push_back(Quantize(f, Gaussian(rows[i] * cols, 50 + i, 0.1f), rows[i], cols));
          bias.push_back(Gaussian(rows[i], 60 + i));
        }
        for (int i = 0; i < 3; ++i) m.push_back({f, rows[i], cols, bytes[i].data()});
        for (int64_t T : {1, 5, 29}) {
          const auto x = Gaussian(T * cols, 70);
          std::vector<std::vector<float>> shared(3), separate(3);
          for (int i = 0; i < 3; ++i) shared[i].resize(T * rows[i]), separate[i].resize(T * rows[i]);
          const MatMulTarget targets[] = {{&m[0], shared[0].data(), bias[0].data()},
                                          {&m[1], shared[1].data(), nullptr},
                                          {&m[2], shared[2].data(), bias[2].data()}};
          MatMulShared(targets, x.data(), T, ctx);
          MatMul(m[0], x.data(), T, separate[0].data(), bias[0].data(), ctx);
          MatMul(m[1], x.data(), T, separate[1].data(), nullptr, ctx);
          MatMul(m[2], x.data(), T, separate[2].data(), bias[2].data(), ctx);
          for (int i = 0; i < 3; ++i)
            ASSERT_EQ(0, std::memcmp(shared[i].data(), separate[i].data(), shared[i].size() * 4))
                << IsaName(isa) << " threads=" << threads << " T=" << T << " product " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace rg
