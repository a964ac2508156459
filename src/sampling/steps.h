// The sampling chain as small free functions over a candidate array
// (llama.cpp-style design). The Sampler runs them in this order:
//   penalties -> top-k -> temperature -> softmax -> top-p -> min-p
//   -> renormalize -> draw
// Each step works on hand-made Candidates too, so each is unit tested alone.
// None of them allocates (they only shrink / reorder `items` in place).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace rg {

struct Candidate {
  int id;
  float logit;
  float p;  // probability, valid after Softmax (or when set by hand)
};

struct Candidates {
  std::vector<Candidate> items;
  // True when items are in descending order (logit, and p once Softmax has
  // run; ties: ascending id). Steps that reorder set it; Penalties clear it.
  bool sorted = false;
};

// Fills c with (id = i, logit = logits[i], p = 0) for i in [0, n), in id
// order, sorted = false. No allocation if capacity >= n.
void FillCandidates(Candidates& c, const float* logits, int n);

// Occurrences of each token id among the last `window` accepted tokens.
// Fixed-size buffers allocated in the constructor; Push never allocates.
class TokenHistory {
 public:
  TokenHistory(int vocab_size, int window);
  void Push(int id);  // id must be in [0, vocab_size)
  void Clear();
  int count(int id) const { return counts_[id]; }
  // The ids with count > 0, in no particular order.
  const std::vector<int>& distinct() const { return distinct_; }
  int window() const { return window_; }
  int vocab_size() const { return int(counts_.size()); }

 private:
  int window_;
  std::vector<int> ring_;       // [window]
  size_t head_ = 0;             // next slot to write
  size_t size_ = 0;             // tokens currently in the window
  std::vector<int32_t> counts_; // [vocab]
  std::vector<int> distinct_;   // capacity window
};

// llama.cpp penalties, for every candidate whose id occurs count > 0 times in
// the history window:
//   logit = logit > 0 ? logit / repeat_penalty : logit * repeat_penalty
//   logit -= count * frequency_penalty + presence_penalty
// Other candidates are untouched. Clears `sorted`.
void ApplyPenalties(Candidates& c, const TokenHistory& history, float repeat_penalty,
                    float frequency_penalty, float presence_penalty);

// Keeps the k highest logits (ties: lower id first), sorted descending.
// k <= 0 or k >= size: no-op.
void TopK(Candidates& c, int k);

// logit /= t (t > 0). Order is unchanged.
void ApplyTemperature(Candidates& c, float t);

// p = softmax(logit) over the candidates. Order is unchanged.
void Softmax(Candidates& c);

// Keeps the smallest prefix, in descending p, whose cumulative probability
// reaches top_p (>= top_p), at least one item. Sorts by p first if needed.
// top_p >= 1: no-op. Assumes p sums to 1.
void TopP(Candidates& c, float top_p);

// Keeps items with p >= min_p * max(p) (always at least the max).
// min_p <= 0: no-op. Preserves order.
void MinP(Candidates& c, float min_p);

// Divides p by its sum.
void Renormalize(Candidates& c);

// Id of the item with the highest logit; the first one in items order on
// ties (items in id order -> lowest id). c must be non-empty.
int ArgMax(const Candidates& c);

// Inverse-CDF draw: the first item whose cumulative p exceeds u * sum(p),
// u in [0, 1). Items with p == 0 are never returned.
int Draw(const Candidates& c, double u);

// Uniform double in [0, 1) from the top 53 bits of one mt19937_64 output
// (portable, unlike std::uniform_real_distribution).
inline double UniformDouble(std::mt19937_64& rng) {
  return double(rng() >> 11) * 0x1.0p-53;
}

}  // namespace rg
