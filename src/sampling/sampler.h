// Token sampler: runs the chain of steps in sampling/steps.h over one logits
// vector per token. All buffers are allocated in the constructor; Sample and
// Accept do not allocate.
#pragma once

#include <cstdint>
#include <random>

#include "sampling/sampling_params.h"
#include "sampling/steps.h"

namespace rg {

class Sampler {
 public:
  // Validates params (throws rg::Error) and reserves all buffers.
  Sampler(const SamplingParams& params, int vocab_size);

  // Picks the next token from logits[0 .. vocab_size).
  //   1. penalties over the last repeat_last_n accepted tokens (if set);
  //   2. temperature 0: argmax (lowest id on ties), no RNG draw;
  //   3. otherwise top-k -> temperature -> softmax -> top-p -> min-p ->
  //      renormalize -> one draw from the seeded mt19937_64.
  // Throws rg::Error if a logit is NaN or +inf, or all are -inf.
  // Does NOT record the token: call Accept() with the token actually used.
  int Sample(const float* logits);

  // Records `id` in the penalty history. Throws rg::Error if out of range.
  void Accept(int id);

  // Clears the history and re-seeds the RNG with params.seed: a new
  // generation with the same inputs reproduces the same tokens.
  void Reset();

  const SamplingParams& params() const { return params_; }
  int vocab_size() const { return vocab_size_; }

 private:
  SamplingParams params_;
  int vocab_size_;
  Candidates cand_;
  TokenHistory history_;
  std::mt19937_64 rng_;
};

}  // namespace rg
