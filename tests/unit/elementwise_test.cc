// Row-wise kernels of ops/elementwise.h against double-precision definitions.
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_random.h"

namespace rg {
namespace {

using test::Gaussian;

TEST(SumOfSquares, MatchesDoubleOverOddSizes) {
  for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 33, 100, 2560, 2561, 7680}) {
    const auto x = Gaussian(size_t(n), uint32_t(n + 1), 3.f);
    double want = 0.;
    for (float v : x) want += double(v) * double(v);
    // n f32 products and adds of positive terms: relative error below
    // ~n * 2^-24 in the worst case, far below in practice; 1e-5 at 7,680.
    EXPECT_NEAR(SumOfSquares(x.data(), n), want, 1e-5 * want + 1e-30) << "n " << n;
  }
}

TEST(SumOfSquares, OrderIsFixedLanesThenPairs) {
  // Squares 2^24, 1, 1, 1 in lanes 0-3. One chain in index order would stay
  // at 2^24 (each + 1 rounds back to even); the documented order folds lanes
  // 2 and 3 into 0 and 1 first (2^24 + 1 -> 2^24, 1 + 1 = 2), then lane 1
  // into 0: 2^24 + 2, exact. The double sum would be 2^24 + 3.
  std::vector<float> x(16, 0.f);
  x[0] = 4096.f;
  x[1] = x[2] = x[3] = 1.f;
  EXPECT_EQ(SumOfSquares(x.data(), 16), 16777218.f);
}

TEST(RmsNorm, MatchesDoubleDefinition) {
  for (int64_t n : {1, 17, 2560}) {
    const auto x = Gaussian(size_t(n), 5, 2.f), w = Gaussian(size_t(n), 6, 1.f);
    std::vector<float> out(static_cast<size_t>(n));
    RmsNorm(x.data(), w.data(), n, 1e-6f, out.data());
    double ss = 0.;
    for (float v : x) ss += double(v) * double(v);
    const double inv = 1. / std::sqrt(ss / double(n) + 1e-6);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(out[size_t(i)], double(x[size_t(i)]) * inv * double(w[size_t(i)]),
                  1e-5 * std::fabs(double(x[size_t(i)]) * inv * double(w[size_t(i)])) + 1e-7)
          << "n " << n << " i " << i;
  }
}

}  // namespace
}  // namespace rg
