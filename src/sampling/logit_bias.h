// OpenAI's `logit_bias`: a bias per token id, added to that token's logit
// before sampling. Values are in [-100, 100]; -100 bans the token (its logit
// becomes -inf, so not even greedy decoding can pick it) and +100 all but
// forces it (logits are soft-capped at 30, so +100 outweighs every other token).
#pragma once

#include <cstdint>
#include <span>

namespace rg {

struct LogitBias {
  int32_t id;
  float bias;
};

inline constexpr float kMaxLogitBias = 100.0f;

// Throws rg::Error naming "logit_bias" for an id outside [0, vocab_size) or
// a bias that is not a finite number in [-100, 100].
void ValidateLogitBias(std::span<const LogitBias> biases, int64_t vocab_size);

// logits[id] += bias for each entry (-100: -inf). Ids must be valid.
void ApplyLogitBias(std::span<const LogitBias> biases, float* logits);

}  // namespace rg
