// The generation loop shared by `generate`, `chat` and the server: feed a
// prompt, then sample / feed one token at a time until a stop condition.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "generate/session.h"
#include "sampling/sampler.h"

namespace rg {

struct StopConditions {
  int64_t max_tokens = 128;
  bool ignore_eos = false;             // when false, eos_id ends generation
  std::vector<int32_t> stop_ids;       // e.g. <end_of_turn> for chat
  bool feed_last = false;              // feed the final sampled token (to continue later)
  const std::atomic<bool>* cancel = nullptr;  // set from another thread / a signal handler
};

enum class FinishReason { kLength, kStopToken, kCallback, kCancelled };
const char* FinishReasonName(FinishReason r);  // "length" | "stop" | "stop" | "cancelled"

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;  // prompt processing, up to the first sampled token
  double decode_seconds = 0;   // the rest
  int32_t stop_token = -1;     // the token that ended generation (not fed), if any
};

// Called with each sampled token (stop tokens excluded). Return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

// Feeds `prompt` (may be empty to continue from the session's last logits)
// and generates. The sampler sees the prompt in its penalty history.
FinishReason GenerateTokens(Session& session, Sampler& sampler, std::span<const int32_t> prompt,
                            const StopConditions& stop, const TokenCallback& on_token,
                            GenerationStats* stats);

}  // namespace rg
