#include "generate/sequence_decoder.h"

#include <algorithm>
#include <exception>

#include "core/error.h"
#include "sampling/logprobs.h"

namespace rg {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop:
    case FinishReason::kCallback: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "?";
}

SequenceDecoder::SequenceDecoder(const Request& req, int32_t eos_id, int64_t vocab_size, int64_t sample_vocab)
    : req_(req),
      eos_id_(eos_id),
      vocab_(vocab_size),
      sample_vocab_(sample_vocab > 0 && sample_vocab < vocab_size ? sample_vocab : vocab_size),
      sampler_(req.sampling, int(sample_vocab_)),
      constraints_(req.logit_bias, req.grammar, vocab_size) {
  RG_CHECK(req.max_tokens >= 0, "max_tokens must be >= 0, got ", req.max_tokens);
  for (int32_t id : req.stop_ids)
    RG_CHECK(id >= 0 && id < vocab_size, "stop token id ", id, " is outside the vocabulary [0, ", vocab_size, ")");
  // Ids that are never sampled need no penalty history.
  for (int32_t id : req.history)
    if (id < sample_vocab_) sampler_.Accept(id);
  for (int32_t id : req.prompt)
    if (id < sample_vocab_) sampler_.Accept(id);
  generated_.reserve(size_t(std::min<int64_t>(req.max_tokens, 1 << 16)));
}

SequenceDecoder::Outcome SequenceDecoder::Next(const float* logits) {
  Outcome out;
  int32_t id;
  try {
    id = sampler_.Sample(constraints_.Apply(logits));
    constraints_.Accept(id);
  } catch (const std::exception& e) {
    out.done = true;
    out.reason = FinishReason::kError;
    out.error = e.what();
    return out;
  }
  const bool is_stop = constraints_.finished() || (!req_.ignore_eos && id == eos_id_) ||
                       std::find(req_.stop_ids.begin(), req_.stop_ids.end(), id) != req_.stop_ids.end();
  if (is_stop) {
    stop_token_ = id;
    out.done = true;
    out.reason = FinishReason::kStop;
    return out;
  }
  sampler_.Accept(id);
  generated_.push_back(id);
  out.token = id;
  bool go_on = true;
  if (req_.on_token) {
    try {
      if (req_.logprobs >= 0) {
        // From the model's row, not the constrained copy: the model's own
        // probability of the token, whatever logit_bias or a grammar did.
        const TokenLogprob lp = ComputeLogprob(logits, vocab_, id, req_.logprobs);
        go_on = req_.on_token(id, &lp);
      } else {
        go_on = req_.on_token(id, nullptr);
      }
    } catch (const std::exception& e) {
      out.done = true;
      out.reason = FinishReason::kError;
      out.error = e.what();
      return out;
    }
  }
  if (!go_on) {
    out.done = true;
    out.reason = FinishReason::kCallback;
  } else if (constraints_.MustEnd()) {  // the structured value is complete
    out.done = true;
    out.reason = FinishReason::kStop;
  } else if (generated() >= req_.max_tokens) {
    out.done = true;
    out.reason = FinishReason::kLength;
  }
  return out;
}

}  // namespace rg
