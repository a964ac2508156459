// SIMD Dot / Axpy against their scalar twins over odd sizes, at every ISA level.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/cpu_features.h"
#include "ops/vector_ops.h"

namespace rg {
namespace {

TEST(VectorOps, MatchScalarAtEveryIsaOnOddSizes) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (int(isa) > int(HardwareIsa())) continue;
    ForceIsaForTesting(isa);
    for (int64_t n : {0, 1, 3, 7, 15, 16, 17, 31, 33, 64, 100, 255, 256, 1000}) {
      std::vector<float> a(n + 1), b(n + 1), y(n + 1), y_ref(n + 1);
      for (int64_t i = 0; i <= n; ++i) a[i] = g(rng), b[i] = g(rng), y[i] = y_ref[i] = g(rng);
      double abs_sum = 0;
      for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(a[i] * b[i]);
      // Summation order differs: bound by the f32 rounding of |a||b| sums.
      EXPECT_NEAR(Dot(a.data() + 1, b.data() + 1, n - (n > 0)), DotScalar(a.data() + 1, b.data() + 1, n - (n > 0)),
                  1e-5 * abs_sum + 1e-6) << IsaName(isa) << " n=" << n;
      Axpy(0.37f, a.data(), y.data(), n);
      AxpyScalar(0.37f, a.data(), y_ref.data(), n);
      for (int64_t i = 0; i <= n; ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-6f * (1 + std::fabs(y_ref[i]))) << "n=" << n;
    }
  }
  ForceIsaForTesting(std::nullopt);
}

}  // namespace
}  // namespace rg
