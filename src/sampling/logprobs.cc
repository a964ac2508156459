#include "sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rg {

double LogSumExp(const float* row, int64_t V) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - mx);
  return mx + std::log(sum);
}

TokenLogprob ComputeLogprob(const float* row, int64_t V, int32_t id, int n) {
  const double lse = LogSumExp(row, V);
  auto lp = [&](int64_t i) { return float(double(row[i]) - lse); };
  TokenLogprob out;
  out.id = id;
  out.logprob = lp(id);
  if (n > 0) {
    // Keep the n best (value desc, id asc) in a small sorted array.
    std::vector<std::pair<float, int32_t>> best;
    best.reserve(size_t(n) + 1);
    for (int64_t i = 0; i < V; ++i) {
      const float x = row[i];
      if (int(best.size()) == n && !(x > best.back().first)) continue;
      auto it = std::upper_bound(best.begin(), best.end(), x,
                                 [](float v, const std::pair<float, int32_t>& e) { return v > e.first; });
      best.insert(it, {x, int32_t(i)});
      if (int(best.size()) > n) best.pop_back();
    }
    out.top.reserve(best.size());
    for (const auto& [x, i] : best) out.top.push_back({i, lp(i)});
  }
  return out;
}

}  // namespace rg
