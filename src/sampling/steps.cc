#include "sampling/steps.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace rg {

namespace {

// Descending logit, ascending id on ties (a strict weak order for non-NaN).
inline bool ByLogitDesc(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

inline bool ByProbDesc(const Candidate& a, const Candidate& b) {
  return a.p > b.p || (a.p == b.p && a.id < b.id);
}

}  // namespace

void FillCandidates(Candidates& c, const float* logits, int n) {
  c.items.resize(size_t(n));
  Candidate* items = c.items.data();
  for (int i = 0; i < n; ++i) items[i] = Candidate{i, logits[i], 0.0f};
  c.sorted = false;
}

// ---- TokenHistory

TokenHistory::TokenHistory(int vocab_size, int window)
    : window_(window < 0 ? 0 : window),
      ring_(size_t(window_)),
      counts_(size_t(vocab_size > 0 ? vocab_size : 0), 0) {
  distinct_.reserve(size_t(window_));
}

void TokenHistory::Push(int id) {
  if (window_ == 0) return;
  RG_DCHECK(id >= 0 && id < int(counts_.size()));
  if (size_ == size_t(window_)) {
    // Evict the oldest token (it sits where we are about to write).
    const int old = ring_[head_];
    if (--counts_[old] == 0) {
      auto it = std::find(distinct_.begin(), distinct_.end(), old);
      *it = distinct_.back();
      distinct_.pop_back();
    }
  } else {
    ++size_;
  }
  ring_[head_] = id;
  head_ = (head_ + 1) % size_t(window_);
  if (counts_[id]++ == 0) distinct_.push_back(id);
}

void TokenHistory::Clear() {
  for (int id : distinct_) counts_[id] = 0;
  distinct_.clear();
  head_ = 0;
  size_ = 0;
}

// ---- steps

void ApplyPenalties(Candidates& c, const TokenHistory& history, float repeat_penalty,
                    float frequency_penalty, float presence_penalty) {
  if (history.distinct().empty()) return;
  auto penalize = [&](Candidate& cand, int count) {
    float logit = cand.logit;
    logit = logit > 0.0f ? logit / repeat_penalty : logit * repeat_penalty;
    logit -= float(count) * frequency_penalty + presence_penalty;
    cand.logit = logit;
  };
  c.sorted = false;
  // Fast path: items still in id order (as after FillCandidates), so each
  // penalised id is found at its own index; only touch those.
  const size_t n = c.items.size();
  bool id_order = true;
  for (int id : history.distinct()) {
    if (!(size_t(id) < n && c.items[size_t(id)].id == id)) {
      id_order = false;
      break;
    }
  }
  if (id_order) {
    for (int id : history.distinct()) penalize(c.items[size_t(id)], history.count(id));
    return;
  }
  const int vocab = history.vocab_size();
  for (Candidate& cand : c.items) {
    if (cand.id < 0 || cand.id >= vocab) continue;
    const int count = history.count(cand.id);
    if (count > 0) penalize(cand, count);
  }
}

void TopK(Candidates& c, int k) {
  if (k <= 0 || size_t(k) >= c.items.size()) return;
  auto begin = c.items.begin();
  if (!c.sorted) {
    std::nth_element(begin, begin + (k - 1), c.items.end(), ByLogitDesc);
    std::sort(begin, begin + k, ByLogitDesc);
  }
  c.items.resize(size_t(k));
  c.sorted = true;
}

void ApplyTemperature(Candidates& c, float t) {
  if (t == 1.0f) return;
  RG_DCHECK(t > 0.0f);
  const float inv = 1.0f / t;
  for (Candidate& cand : c.items) cand.logit *= inv;
}

void Softmax(Candidates& c) {
  if (c.items.empty()) return;
  float max_logit = c.items[0].logit;
  for (const Candidate& cand : c.items) max_logit = std::max(max_logit, cand.logit);
  if (max_logit == -std::numeric_limits<float>::infinity()) {
    Fail("sampler: every candidate logit is -inf; nothing can be sampled");
  }
  double sum = 0.0;
  for (Candidate& cand : c.items) {
    cand.p = std::exp(cand.logit - max_logit);
    sum += cand.p;
  }
  const double inv = 1.0 / sum;
  for (Candidate& cand : c.items) cand.p = float(cand.p * inv);
}

void TopP(Candidates& c, float top_p) {
  if (top_p >= 1.0f || c.items.size() <= 1) return;
  if (!c.sorted) {
    std::sort(c.items.begin(), c.items.end(), ByProbDesc);
    c.sorted = true;
  }
  const double target = top_p;
  double cum = 0.0;
  size_t keep = c.items.size();
  for (size_t i = 0; i < c.items.size(); ++i) {
    cum += c.items[i].p;
    if (cum >= target) {
      keep = i + 1;
      break;
    }
  }
  c.items.resize(keep);
}

void MinP(Candidates& c, float min_p) {
  if (min_p <= 0.0f || c.items.empty()) return;
  float p_max = c.items[0].p;
  for (const Candidate& cand : c.items) p_max = std::max(p_max, cand.p);
  const double threshold = double(min_p) * double(p_max);
  auto keep = [threshold](const Candidate& cand) { return double(cand.p) >= threshold; };
  if (c.sorted) {
    size_t n = 1;  // the max always stays
    while (n < c.items.size() && keep(c.items[n])) ++n;
    c.items.resize(n);
  } else {
    auto end = std::remove_if(c.items.begin(), c.items.end(),
                              [&](const Candidate& cand) { return !keep(cand); });
    c.items.erase(end, c.items.end());
  }
}

void Renormalize(Candidates& c) {
  double sum = 0.0;
  for (const Candidate& cand : c.items) sum += cand.p;
  if (!(sum > 0.0)) return;
  const double inv = 1.0 / sum;
  for (Candidate& cand : c.items) cand.p = float(cand.p * inv);
}

int ArgMax(const Candidates& c) {
  RG_CHECK(!c.items.empty(), "sampler: ArgMax over no candidates");
  size_t best = 0;
  for (size_t i = 1; i < c.items.size(); ++i) {
    if (c.items[i].logit > c.items[best].logit) best = i;
  }
  return c.items[best].id;
}

int Draw(const Candidates& c, double u) {
  RG_CHECK(!c.items.empty(), "sampler: Draw over no candidates");
  double sum = 0.0;
  for (const Candidate& cand : c.items) sum += cand.p;
  const double target = u * sum;
  double cum = 0.0;
  int last_positive = c.items[0].id;
  for (const Candidate& cand : c.items) {
    if (cand.p <= 0.0f) continue;
    cum += cand.p;
    last_positive = cand.id;
    if (cum > target) return cand.id;
  }
  return last_positive;  // rounding: u * sum landed at or beyond the total
}

}  // namespace rg
