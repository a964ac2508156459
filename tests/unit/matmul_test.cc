// MatMul kernels against the scalar oracle (MatMulScalar): every weight format
// with a SIMD kernel x every ISA level this CPU has x odd shapes x pool sizes,
// with and without bias, both the skinny (decode) and the packed GEMM path.
#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/threads.h"
#include "ops/cpu_features.h"
#include "ops/matmul_kernels.h"

namespace rg {
namespace {

// Restores the process-wide ISA test hook on scope exit.
struct IsaGuard {
  ~IsaGuard() { ForceIsaForTesting(std::nullopt); }
};

// gemm_min_t that forces a path: "skinny" (GEMM disabled), "gemm" (GEMM for
// every T where the level has one) or "auto" (the measured threshold).
int64_t GemmMinTFor(const std::string& path) {
  return path == "skinny" ? std::numeric_limits<int64_t>::max() : path == "gemm" ? 1 : 0;
}

// A weight matrix with its bytes, plus an f32 copy of the values.
struct TestWeights {
  WeightFormat format;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;  // offset bytes of padding, then the data
  std::vector<float> values;   // W[r, c] as float
  size_t offset = 0;

  WeightMatrix Matrix() const { return {format, rows, cols, bytes.data() + offset}; }
};

TestWeights MakeWeights(WeightFormat f, int64_t rows, int64_t cols, std::mt19937& rng,
                        size_t offset = 0) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  TestWeights w{f, rows, cols, {}, {}, offset};
  const size_t n = size_t(rows * cols);
  w.values.resize(n);
  const size_t elem = f == WeightFormat::F32 ? 4 : 2;
  w.bytes.assign(offset + n * elem + 64, 0xCD);
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    if (f == WeightFormat::F32) {
      w.values[i] = v;
      std::memcpy(w.bytes.data() + offset + 4 * i, &v, 4);
    } else {
      const uint16_t b = F32ToBF16(v);
      w.values[i] = BF16ToF32(b);
      std::memcpy(w.bytes.data() + offset + 2 * i, &b, 2);
    }
  }
  return w;
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

// sum_c |W[r, c] x[t, c]|, laid out like y.
std::vector<double> AbsProducts(const TestWeights& w, const float* x, int64_t T) {
  std::vector<double> s(size_t(T * w.rows));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < w.rows; ++r) {
      double a = 0;
      for (int64_t c = 0; c < w.cols; ++c)
        a += std::fabs(double(w.values[r * w.cols + c]) * x[t * w.cols + c]);
      s[t * w.rows + r] = a;
    }
  return s;
}

// Fails with the first few mismatches: |y - ref| <= rel * sum|W x| + abs_tol.
void ExpectClose(const std::vector<float>& y, const std::vector<float>& ref,
                 const std::vector<double>& mag, double rel, double abs_tol,
                 const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double tol = rel * mag[i] + abs_tol;
    if (!(std::fabs(double(y[i]) - ref[i]) <= tol)) {
      if (++bad <= 3)
        ADD_FAILURE() << what << ": y[" << i << "] = " << y[i] << ", reference " << ref[i]
                      << ", tolerance " << tol;
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

std::string Describe(WeightFormat f, Isa isa, int64_t rows, int64_t cols, int64_t T, int threads,
                     bool bias, const char* path) {
  return StrCat(WeightFormatName(f), " ", IsaName(isa), " rows=", rows, " cols=", cols, " T=", T,
                " threads=", threads, bias ? " bias" : "", " ", path);
}

// Exact modes: f32 products and sums, only the summation order differs from
// the oracle, so the error is a few f32 roundings of the partial sums:
//   |y - y_ref| <= 1e-5 * sum_c |W[r,c] x[t,c]| + 1e-6.
constexpr double kExactRel = 1e-5, kExactAbs = 1e-6;
// Fast bf16 mode: each activation is rounded to bf16 (relative error <= 2^-9),
// the weights are bf16 already and the products are exact in f32, so
//   |y - y_ref| <= 2^-8 * sum_c |W[r,c] x[t,c]| + 1e-5.
constexpr double kFastRel = 1.0 / 256, kFastAbs = 1e-5;

using Param = std::tuple<WeightFormat, Isa>;

class MatMulTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    format_ = std::get<0>(GetParam());
    isa_ = std::get<1>(GetParam());
    if (int(isa_) > int(HardwareIsa())) GTEST_SKIP() << IsaName(isa_) << " not on this CPU";
  }

  KernelOptions Options(const std::string& path = "auto",
                        MatMulPrecision precision = MatMulPrecision::kExact) const {
    KernelOptions o;
    o.isa = isa_;
    o.precision = precision;
    o.gemm_min_t = GemmMinTFor(path);
    return o;
  }

  // Runs every (T, rows, cols) case through `path` ("skinny": GEMM disabled,
  // "gemm": GEMM for every T where the level has one, "auto": default
  // threshold) and checks it.
  void RunSweep(const char* path, MatMulPrecision precision, double rel, double abs_tol,
                const std::vector<int64_t>& row_set, const std::vector<int64_t>& col_set,
                const std::vector<int64_t>& t_set) {
    ThreadPool pool1(1), pool2(2);
    KernelContext ctx1(pool1, Options(path, precision)), ctx2(pool2, Options(path, precision));
    std::mt19937 rng(1234);
    for (int64_t rows : row_set)
      for (int64_t cols : col_set) {
        const TestWeights w = MakeWeights(format_, rows, cols, rng);
        const std::vector<float> bias = RandomVector(size_t(rows), rng);
        for (int64_t T : t_set) {
          const std::vector<float> x = RandomVector(size_t(T * cols), rng);
          const std::vector<double> mag = AbsProducts(w, x.data(), T);
          for (bool with_bias : {false, true}) {
            std::vector<float> ref(size_t(T * rows));
            MatMulScalar(w.Matrix(), x.data(), T, ref.data(), with_bias ? bias.data() : nullptr);
            for (KernelContext* ctx : {&ctx1, &ctx2}) {
              std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
              MatMul(w.Matrix(), x.data(), T, y.data(), with_bias ? bias.data() : nullptr, *ctx);
              ExpectClose(y, ref, mag, rel, abs_tol,
                          Describe(format_, isa_, rows, cols, T, ctx->pool().size(), with_bias, path));
              if (HasFailure()) return;
            }
          }
        }
      }
  }

  WeightFormat format_;
  Isa isa_;
};

const std::vector<int64_t> kRows = {1, 3, 17, 33, 130};
const std::vector<int64_t> kCols = {1, 7, 16, 31, 65, 257, 2560};
const std::vector<int64_t> kTokens = {1, 2, 5, 16, 33, 100};

TEST_P(MatMulTest, DefaultPathMatchesScalar) {
  RunSweep("auto", MatMulPrecision::kExact, kExactRel, kExactAbs, kRows, kCols, kTokens);
}

TEST_P(MatMulTest, SkinnyPathMatchesScalarForEveryT) {
  RunSweep("skinny", MatMulPrecision::kExact, kExactRel, kExactAbs, kRows, kCols, kTokens);
}

TEST_P(MatMulTest, GemmPathMatchesScalarForEveryT) {
  RunSweep("gemm", MatMulPrecision::kExact, kExactRel, kExactAbs, kRows, kCols, kTokens);
}

// Shapes that cross the blocking boundaries: the AVX2 GEMM's K block (256
// columns), token block (~288 tokens) and row panel (16 rows); the dot
// kernels' row blocks (2 / 4 rows), token groups (6), L2 token blocks
// (T * cols * 4 > 768 KiB), column chunks (cols > 2560 with large T) and the
// T = 1 long-row path (cols > 4096).
TEST_P(MatMulTest, BlockingBoundaries) {
  for (const char* path : {"auto", "gemm"}) {
    RunSweep(path, MatMulPrecision::kExact, kExactRel, kExactAbs, {31, 32, 97}, {255, 1030},
             {13, 14, 15, 290, 505});
    RunSweep(path, MatMulPrecision::kExact, kExactRel, kExactAbs, {5, 33}, {5200, 5201},
             {1, 2, 7, 60});
  }
}

TEST_P(MatMulTest, FastPrecisionWithinBf16Tolerance) {
  if (format_ != WeightFormat::BF16) GTEST_SKIP() << "kFast only changes BF16 weights";
  RunSweep("auto", MatMulPrecision::kFast, kFastRel, kFastAbs, kRows, kCols, kTokens);
  // Blocking of the fast kernel (matmul_simd.h BlockedRows, 768 KiB of
  // activations per block): 4-row groups and a row tail, 6-token groups
  // (balanced, so 5s too), odd columns (half a bf16 pair, a partial step);
  // column chunks once T * cols * 2 > 768 KiB and cols > 2560 (80 x 5201);
  // several token blocks (400 x 1030: 361 tokens per block).
  RunSweep("auto", MatMulPrecision::kFast, kFastRel, kFastAbs, {6, 31, 32, 33, 65}, {383, 384, 385, 769},
           {12, 13, 23, 145});
  RunSweep("auto", MatMulPrecision::kFast, kFastRel, kFastAbs, {6, 33}, {5200, 5201}, {13, 80});
  RunSweep("auto", MatMulPrecision::kFast, kFastRel, kFastAbs, {9}, {1030}, {400});
}

// Weights at an odd address (2 bytes past alignment, as in an mmapped file),
// activations and outputs 4 bytes past 64-byte alignment.
TEST_P(MatMulTest, UnalignedPointers) {
  ThreadPool pool(2);
  std::mt19937 rng(99);
  for (const char* path : {"skinny", "gemm"}) {
    KernelContext ctx(pool, Options(path));
    for (int64_t T : {1, 3, 40}) {
      const int64_t rows = 70, cols = 301;
      const TestWeights w = MakeWeights(format_, rows, cols, rng, /*offset=*/2);
      ASSERT_NE(reinterpret_cast<uintptr_t>(w.Matrix().data) % 4, 0u);
      std::vector<float> xbuf = RandomVector(size_t(T * cols + 1), rng);
      std::vector<float> bias_buf = RandomVector(size_t(rows + 1), rng);
      const float* x = xbuf.data() + 1;
      const float* bias = bias_buf.data() + 1;
      // Reference from an aligned copy of the weights.
      WeightMatrix ref_w = w.Matrix();
      std::vector<uint8_t> copy(w.bytes.begin() + 2, w.bytes.end());
      ref_w.data = copy.data();
      std::vector<float> ref(size_t(T * rows));
      MatMulScalar(ref_w, x, T, ref.data(), bias);
      std::vector<float> ybuf(ref.size() + 1, std::numeric_limits<float>::quiet_NaN());
      MatMul(w.Matrix(), x, T, ybuf.data() + 1, bias, ctx);
      std::vector<float> y(ybuf.begin() + 1, ybuf.end());
      ExpectClose(y, ref, AbsProducts(w, x, T), kExactRel, kExactAbs,
                  Describe(format_, isa_, rows, cols, T, 2, true, path));
    }
  }
}

// Same inputs, same pool: bitwise the same result (no dependence on timing).
TEST_P(MatMulTest, Deterministic) {
  ThreadPool pool(2);
  KernelContext ctx(pool, Options());
  std::mt19937 rng(7);
  const TestWeights w = MakeWeights(format_, 300, 700, rng);
  for (int64_t T : {1, 6, 64}) {
    const std::vector<float> x = RandomVector(size_t(T * 700), rng);
    std::vector<float> a(size_t(T * 300)), b(a.size());
    MatMul(w.Matrix(), x.data(), T, a.data(), nullptr, ctx);
    MatMul(w.Matrix(), x.data(), T, b.data(), nullptr, ctx);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "T=" << T;
  }
}

// cols = 0: y is the bias (or zero).
TEST_P(MatMulTest, EmptyReductionGivesBias) {
  ThreadPool pool(2);
  KernelContext ctx(pool, Options());
  const float bias[3] = {1.f, -2.f, 3.f};
  WeightMatrix w{format_, 3, 0, bias};
  for (int64_t T : {1, 20}) {
    std::vector<float> y(size_t(T * 3), std::numeric_limits<float>::quiet_NaN());
    MatMul(w, nullptr, T, y.data(), bias, ctx);
    for (int64_t t = 0; t < T; ++t)
      for (int r = 0; r < 3; ++r) EXPECT_EQ(y[t * 3 + r], bias[r]);
  }
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return StrCat(WeightFormatName(std::get<0>(info.param)), "_", IsaName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(MatMul, MatMulTest,
                         ::testing::Combine(::testing::Values(WeightFormat::F32, WeightFormat::BF16),
                                            ::testing::Values(Isa::kScalar, Isa::kAvx2,
                                                              Isa::kAvx512)),
                         ParamName);

TEST(MatMulSettings, IsaNamesRoundTrip) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(ParseIsa(IsaName(i)), i);
  EXPECT_EQ(ParseIsa("AVX2"), Isa::kAvx2);
  EXPECT_FALSE(ParseIsa("sse9").has_value());
  EXPECT_FALSE(ParseIsa(nullptr).has_value());
}

TEST(MatMulSettings, ForceIsaClampsToHardware) {
  IsaGuard guard;
  EXPECT_EQ(ForceIsaForTesting(Isa::kScalar), Isa::kScalar);
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  EXPECT_FALSE(ActiveHasAvx512Bf16());
  EXPECT_EQ(ForceIsaForTesting(Isa::kAvx512), HardwareIsa());
  ForceIsaForTesting(std::nullopt);
  EXPECT_LE(int(ActiveIsa()), int(HardwareIsa()));
}

TEST(MatMulSettings, ContextDefaultsToExactAtTheActiveLevel) {
  ThreadPool pool(1);
  const KernelContext ctx(pool);
  EXPECT_EQ(ctx.precision(), MatMulPrecision::kExact);
  EXPECT_EQ(ctx.isa(), ActiveIsa());
  KernelOptions o;
  o.isa = Isa::kAvx512;
  EXPECT_EQ(KernelContext(pool, o).isa(), HardwareIsa());  // clamped
}

// Two contexts with different settings side by side (two models in one
// process): each product follows its own context.
TEST(MatMulSettings, ContextsAreIndependent) {
  if (!HardwareHasAvx512Bf16()) GTEST_SKIP() << "no AVX512_BF16: kFast equals kExact";
  ThreadPool pool(2);
  KernelOptions fast_options;
  fast_options.precision = MatMulPrecision::kFast;
  KernelContext exact(pool), fast(pool, fast_options);
  std::mt19937 rng(5);
  const TestWeights w = MakeWeights(WeightFormat::BF16, 64, 256, rng);
  const std::vector<float> x = RandomVector(32 * 256, rng);
  std::vector<float> ye(64 * 32), yf(ye.size()), ye2(ye.size()), ref(ye.size());
  MatMul(w.Matrix(), x.data(), 32, ye.data(), nullptr, exact);
  MatMul(w.Matrix(), x.data(), 32, yf.data(), nullptr, fast);
  MatMul(w.Matrix(), x.data(), 32, ye2.data(), nullptr, exact);
  MatMulScalar(w.Matrix(), x.data(), 32, ref.data(), nullptr);
  EXPECT_EQ(ye, ye2);
  EXPECT_NE(ye, yf);  // bf16-rounded activations change the low bits
  ExpectClose(ye, ref, AbsProducts(w, x.data(), 32), kExactRel, kExactAbs, "exact context");
  ExpectClose(yf, ref, AbsProducts(w, x.data(), 32), kFastRel, kFastAbs, "fast context");
}

}  // namespace
}  // namespace rg
