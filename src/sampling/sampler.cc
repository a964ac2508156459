#include "sampling/sampler.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace rg {

namespace {

const SamplingParams& Validated(const SamplingParams& p, int vocab_size) {
  p.Validate();
  if (vocab_size <= 0) Fail("sampler: vocab_size must be > 0, got ", vocab_size);
  return p;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : params_(Validated(params, vocab_size)),
      vocab_size_(vocab_size),
      history_(vocab_size, params.penalties_enabled() ? params.repeat_last_n : 0),
      rng_(params.seed) {
  cand_.items.reserve(size_t(vocab_size));
}

int Sampler::Sample(const float* logits) {
  // Reject NaN / +inf (a model bug that would silently poison sampling).
  // -inf is allowed: it masks a token.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int i = 0; i < vocab_size_; ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == kInf) {
      Fail("sampler: logit of token ", i, " is ", x, " (expected a finite value or -inf)");
    }
  }
  FillCandidates(cand_, logits, vocab_size_);
  if (params_.penalties_enabled()) {
    ApplyPenalties(cand_, history_, params_.repeat_penalty, params_.frequency_penalty,
                   params_.presence_penalty);
  }
  if (params_.temperature == 0.0f) {
    const int id = ArgMax(cand_);
    if (cand_.items[size_t(id)].logit == -kInf) {
      Fail("sampler: every logit is -inf; nothing can be sampled");
    }
    return id;
  }
  TopK(cand_, params_.top_k);
  ApplyTemperature(cand_, params_.temperature);
  Softmax(cand_);
  TopP(cand_, params_.top_p);
  MinP(cand_, params_.min_p);
  Renormalize(cand_);
  return Draw(cand_, UniformDouble(rng_));
}

void Sampler::Accept(int id) {
  if (id < 0 || id >= vocab_size_) {
    Fail("sampler: accepted token id ", id, " is out of range [0, ", vocab_size_, ")");
  }
  history_.Push(id);
}

void Sampler::Reset() {
  history_.Clear();
  rng_.seed(params_.seed);
}

}  // namespace rg
