// DiagonalRecurrenceStep against its oracle at every ISA level, odd sizes,
// several steps (h carried).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/cpu_features.h"
#include "ops/recurrence.h"

namespace rg {
namespace {

TEST(DiagonalRecurrence, MatchesTheOracleOverStepsAtEveryIsa) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (int(isa) > int(HardwareIsa())) continue;
    ForceIsaForTesting(isa);
    for (int64_t n : {1, 7, 16, 17, 63, 130}) {
      std::mt19937 rng{uint32_t(n)};
      std::uniform_real_distribution<float> decay(0.f, 1.f);
      std::normal_distribution<float> g;
      std::vector<float> h(n), h_ref(n), y(n), y_ref(n);
      for (int step = 0; step < 6; ++step) {
        std::vector<float> a(n), b(n), x(n);
        for (int64_t i = 0; i < n; ++i) {
          a[i] = step == 0 ? 0.f : decay(rng);
          b[i] = step == 0 ? 1.f : decay(rng);
          x[i] = 3 * g(rng);
        }
        std::vector<float> h_before = h;
        DiagonalRecurrenceStep(a.data(), b.data(), x.data(), h.data(), y.data(), n);
        DiagonalRecurrenceStepReference(a.data(), b.data(), x.data(), h_ref.data(), y_ref.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          // A fused multiply-add rounds once where the oracle rounds twice.
          const float scale = std::fabs(a[i] * h_before[i]) + std::fabs(b[i] * x[i]) + std::fabs(h_ref[i]);
          ASSERT_NEAR(h[i], h_ref[i], 1e-5f * scale) << IsaName(isa) << " n=" << n << " step " << step;
          ASSERT_EQ(y[i], h[i]);
          if (step == 0) {
            ASSERT_EQ(h[i], x[i]);  // a = 0, b = 1: h is the input
          }
        }
        h_ref = h;  // compare each step from the same h
      }
    }
  }
  ForceIsaForTesting(std::nullopt);
}

}  // namespace
}  // namespace rg
