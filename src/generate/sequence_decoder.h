// One sequence's token loop outside the model, the same for every front end:
// constrain a copy of the logits row (logit_bias, grammar) -> sample -> stop
// checks -> report the token -> say whether to go on (and which token to feed
// next) or how the sequence ended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "generate/request.h"
#include "sampling/sampler.h"
#include "sampling/token_constraints.h"

namespace rg {

class SequenceDecoder {
 public:
  // Validates the request's sampling, stop, logprob, logit_bias and grammar
  // settings (rg::Error) and gives the sampler the penalty history:
  // req.history, then the prompt. Only ids below sample_vocab (<= vocab_size)
  // are ever sampled.
  SequenceDecoder(const Request& req, int32_t eos_id, int64_t vocab_size, int64_t sample_vocab);

  struct Outcome {
    bool done = false;
    FinishReason reason = FinishReason::kLength;
    int32_t token = -1;  // sampled and reported but not yet fed (-1: none)
    std::string error;   // reason kError
  };

  // Samples the next token from `logits` [V] (left intact: logprobs come
  // from it) and runs req.on_token. A grammar ends the sequence (kStop) once
  // its value is complete, after reporting the token that completed it, or
  // when it sampled an end token (not reported). Not done:
  // feed `token` and call again with the logits after it. Done: `token` is
  // the last reported token if it was not fed (length / callback stops),
  // -1 otherwise (a stop id was sampled: it is not reported, nor fed).
  Outcome Next(const float* logits);

  int64_t generated() const { return int64_t(generated_.size()); }
  const std::vector<int32_t>& generated_ids() const { return generated_; }
  int32_t stop_token() const { return stop_token_; }

 private:
  const Request& req_;
  int32_t eos_id_;
  int64_t vocab_;
  int64_t sample_vocab_;
  Sampler sampler_;  // over ids [0, sample_vocab_): the rest are masked by never being read
  TokenConstraints constraints_;
  std::vector<int32_t> generated_;
  int32_t stop_token_ = -1;
};

}  // namespace rg
