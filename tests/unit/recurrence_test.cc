// GatedRecurrenceStep against its std:: oracle at every ISA level, odd sizes,
// several steps (h carried), with and without the reset.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/cpu_features.h"
#include "ops/recurrence.h"

namespace rg {
namespace {

TEST(GatedRecurrence, MatchesTheOracleOverStepsAtEveryIsa) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (int(isa) > int(HardwareIsa())) continue;
    ForceIsaForTesting(isa);
    for (int64_t n : {1, 7, 16, 17, 63, 130}) {
      std::mt19937 rng{uint32_t(n)};
      std::uniform_real_distribution<float> gate(0.f, 1.f), coef(-8.f * 3.f, -1e-3f);
      std::normal_distribution<float> g;
      std::vector<float> c(n), h(n), h_ref(n);
      for (float& v : c) v = coef(rng);
      for (int step = 0; step < 6; ++step) {
        std::vector<float> ga(n), gx(n), x(n);
        for (int64_t i = 0; i < n; ++i) ga[i] = gate(rng), gx[i] = gate(rng), x[i] = 3 * g(rng);
        std::vector<float> x_ref = x;
        const bool reset = step == 0 || step == 3;
        GatedRecurrenceStep(c.data(), ga.data(), gx.data(), x.data(), h.data(), n, reset);
        GatedRecurrenceStepReference(c.data(), ga.data(), gx.data(), x_ref.data(), h_ref.data(), n, reset);
        for (int64_t i = 0; i < n; ++i) {
          // exp within 2 ulp; sqrt(1 - a^2) amplifies a's error near a = 1
          // by a / sqrt(1 - a^2), bounded here by the coefficient range.
          ASSERT_NEAR(h[i], h_ref[i], 2e-5f * (1 + std::fabs(h_ref[i]))) << IsaName(isa) << " n=" << n;
          ASSERT_EQ(x[i], h[i]);
        }
      }
    }
  }
  ForceIsaForTesting(std::nullopt);
}

}  // namespace
}  // namespace rg
