// The vectorized activations against their std:: oracles, at every ISA level,
// on odd sizes and on the edges of exp's range.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/activations.h"
#include "ops/cpu_features.h"

namespace rg {
namespace {

std::vector<Isa> Isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (int(isa) <= int(HardwareIsa())) out.push_back(isa);
  return out;
}

// Inputs: a normal spread, large magnitudes, and the clamp edges.
std::vector<float> Inputs(int64_t n, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, spread);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  const float edges[] = {0.f, -0.f, 1e-30f, -1e-7f, 9.f, -9.f, 40.f, -40.f, 88.f, -87.f, 200.f, -200.f};
  for (int64_t i = 0; i < n && i < int64_t(std::size(edges)); ++i) x[i * 7 % n] = edges[i];
  return x;
}

TEST(Activations, ExpFastIsWithinTwoUlpOverItsRange) {
  double worst = 0;
  for (float x = -87.f; x <= 88.f; x += 0.0137f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(ExpFast(x) - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7);  // 2 ulp of f32 = 2.4e-7 relative
  EXPECT_EQ(ExpFast(0.f), 1.f);
  EXPECT_TRUE(std::isnan(ExpFast(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GT(ExpFast(1000.f), 1e38f);  // clamped, finite
  EXPECT_LT(ExpFast(-1000.f), 1e-37f);
}

TEST(Activations, GeluAndGeluMulMatchTheOracleOnOddSizes) {
  for (Isa isa : Isas()) {
    ForceIsaForTesting(isa);
    for (int64_t n : {1, 3, 15, 16, 17, 31, 33, 255, 1001}) {
      std::vector<float> x = Inputs(n, uint32_t(n), 3.f), up = Inputs(n, uint32_t(n + 1), 1.f);
      std::vector<float> g = x, gm = x;
      GeluInPlace(g.data(), n);
      GeluMul(gm.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float want = GeluTanhReference(x[i]);
        // tanh's absolute error ~1.2e-7 near 0, scaled by 0.5|x|; plus 2 ulp.
        const float tol = 1.5e-7f * std::fabs(x[i]) + 2.5e-7f * std::fabs(want);
        ASSERT_NEAR(g[i], want, tol) << IsaName(isa) << " x=" << x[i];
        ASSERT_NEAR(gm[i], want * up[i], tol * std::fabs(up[i]) + 1e-37f) << IsaName(isa) << " x=" << x[i];
      }
    }
  }
  ForceIsaForTesting(std::nullopt);
}

TEST(Activations, ExpSigmoidSoftCapSoftmaxMatchTheOracleOnOddSizes) {
  for (Isa isa : Isas()) {
    ForceIsaForTesting(isa);
    for (int64_t n : {1, 2, 15, 17, 33, 257, 4099}) {
      const std::vector<float> x = Inputs(n, uint32_t(3 * n), 4.f);
      std::vector<float> ex = x;
      ExpInPlace(ex.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float want = std::exp(std::clamp(x[i], -87.3f, 88.3f));  // ExpFast clamps, then < 2 ulp
        ASSERT_NEAR(ex[i], want, 2.5e-7f * want) << IsaName(isa) << " x=" << x[i];
      }

      std::vector<float> sg = x;
      SigmoidInPlace(sg.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(sg[i], 1.f / (1.f + std::exp(-x[i])), 3e-7f) << IsaName(isa) << " x=" << x[i];

      std::vector<float> cap = x, cap_ref = x;
      SoftCap(cap.data(), n, 30.f);
      SoftCapReference(cap_ref.data(), n, 30.f);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(cap[i], cap_ref[i], 30.f * 2.5e-7f) << IsaName(isa);

      std::vector<float> sm = x, sm_ref = x;
      Softmax(sm.data(), n);
      SoftmaxReference(sm_ref.data(), n);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(sm[i], sm_ref[i], 1e-6f * sm_ref[i] + 1e-9f) << IsaName(isa) << " n=" << n;
        sum += sm[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
  ForceIsaForTesting(std::nullopt);
}

TEST(Activations, SoftCapZeroIsANoOp) {
  std::vector<float> x = {1.f, 100.f, -3.f};
  SoftCap(x.data(), 3, 0.f);
  EXPECT_EQ(x, (std::vector<float>{1.f, 100.f, -3.f}));
}

}  // namespace
}  // namespace rg
