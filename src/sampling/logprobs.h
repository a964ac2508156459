// Log-probabilities of tokens under a logits row: what OpenAI's `logprobs`,
// `score` and `perplexity` report. Values are log_softmax of the model's
// (soft-capped) logits, before any sampling transformation (temperature,
// penalties, ...), computed in double.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace rg {

// The log-probability of one token at one position, with the most likely
// alternatives there (highest first; ties: lower id first).
struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.f;
  std::vector<std::pair<int32_t, float>> top;
};

// log(sum_i exp(row[i])) over a [V] row.
double LogSumExp(const float* row, int64_t V);

// log_softmax(row)[id] and the top-`n` alternatives (n = 0: none).
TokenLogprob ComputeLogprob(const float* row, int64_t V, int32_t id, int n);

}  // namespace rg
