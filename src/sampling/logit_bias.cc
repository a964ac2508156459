#include "sampling/logit_bias.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace rg {

void ValidateLogitBias(std::span<const LogitBias> biases, int64_t vocab_size) {
  for (const LogitBias& b : biases) {
    RG_CHECK(b.id >= 0 && b.id < vocab_size, "logit_bias: token id ", b.id, " is outside the vocabulary [0, ",
             vocab_size, ")");
    RG_CHECK(std::isfinite(b.bias) && std::fabs(b.bias) <= kMaxLogitBias, "logit_bias: the bias of token ", b.id,
             " must be in [-100, 100], got ", b.bias);
  }
}

void ApplyLogitBias(std::span<const LogitBias> biases, float* logits) {
  for (const LogitBias& b : biases)
    logits[b.id] = b.bias <= -kMaxLogitBias ? -std::numeric_limits<float>::infinity() : logits[b.id] + b.bias;
}

}  // namespace rg
