// Seeded random test data shared by the unit tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace rg::test {

// n draws of N(0, sigma^2) from a generator seeded with `seed`.
inline std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace rg::test
