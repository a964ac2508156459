// What a front end asks the generation engine (generate/engine.h) for, and
// what it gets back. One Request is one sequence: a prompt to feed, then
// tokens sampled one at a time until a stop condition. Front ends (CLI
// commands, the HTTP server, the Python and C APIs) only fill these in and
// render what the callbacks deliver.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/state.h"
#include "sampling/logprobs.h"
#include "sampling/sampling_params.h"
#include "sampling/token_constraints.h"

namespace rg {

enum class FinishReason {
  kLength,     // max_tokens reached
  kStop,       // EOS or a stop id was sampled (not emitted), or the grammar's value is complete
  kCallback,   // on_token returned false (e.g. a stop string completed)
  kCancelled,  // Cancel(), the caller's cancel flag, or engine shutdown
  kError,      // e.g. NaN logits; Result::error says what
};
// "length" | "stop" (kStop and kCallback) | "cancelled" | "error"
const char* FinishReasonName(FinishReason r);

// Raw logits of prompt rows handed to on_prompt_logits.
enum class PromptLogits { kNone, kLast, kAll };

struct Result {
  FinishReason reason = FinishReason::kLength;
  std::string error;
  int64_t prompt_tokens = 0;     // prompt.size()
  int64_t cached_tokens = 0;     // prompt tokens restored from the state cache (not run)
  int64_t generated_tokens = 0;  // tokens passed to on_token
  int32_t stop_token = -1;       // the EOS / stop id that ended it, if any
  double queue_seconds = 0;      // submitted -> got a slot
  double prefill_seconds = 0;    // got a slot -> first token sampled (or prompt done)
  double decode_seconds = 0;     // first token sampled -> finished
  double total_seconds = 0;      // submitted -> finished
};

struct Request {
  // ---- input
  std::vector<int32_t> prompt;  // ids inside the vocabulary; empty only when continuing
                                // `state` from `initial_logits`
  SamplingParams sampling;
  std::vector<int32_t> history;  // penalty history before the prompt (e.g. earlier chat turns)

  // ---- what may be sampled (sampling/token_constraints.h), applied to the
  // sequence's own copy of each logits row: the biases, then the grammar's
  // mask. `logprobs` below still report the model's unbiased distribution.
  std::vector<LogitBias> logit_bias;  // ids in the vocabulary, biases in [-100, 100]
  GrammarConstraint grammar;          // structured output; ends the sequence (kStop) once complete

  // ---- stop conditions
  int64_t max_tokens = 16;       // >= 0; 0 = only feed the prompt
  bool ignore_eos = false;       // when false, the model's eos_id ends the sequence
  std::vector<int32_t> stop_ids;  // more ids that end it (e.g. <end_of_turn>)

  // ---- what to report besides the tokens
  int logprobs = -1;              // >= 0: log-probability of each generated token, with this many alternatives
  int prompt_logprobs = -1;       // >= 0: the same for prompt tokens prompt_logprobs_from ..
  int64_t prompt_logprobs_from = 1;  // prompt index of the first one; 0 needs initial_logits
  PromptLogits prompt_logits = PromptLogits::kNone;  // raw rows for on_prompt_logits

  // ---- where the sequence lives
  // null: a slot of the engine (state from the cache or empty). Otherwise the
  // caller's State, continued from its position: the caller keeps it alive
  // and does not touch it until on_done, which comes after every emitted
  // token has been fed (so the state holds the whole output, whatever ended it).
  State* state = nullptr;
  const float* initial_logits = nullptr;  // [V] with `state`: the logits that predict prompt[0]
  // [V] with `state`: receives the logits after the last token the state
  // holds at on_done (to continue from it later), however the sequence ended
  // (except errors and cancellation before any token).
  float* final_logits = nullptr;

  // ---- the state cache (slots only)
  bool cache = true;  // look up the longest cached prefix of the prompt, insert snapshots
  // Prompt prefix lengths where a snapshot is likely to exist in a shared
  // store (e.g. chat turn boundaries); probed besides the checkpoints.
  std::vector<int64_t> cache_hints;
  // Chat: the tokens (from position 0) that the client's next request will
  // start with, given this reply's ids (the reply re-rendered as text plus
  // "<end_of_turn>\n"). When they extend what was fed, the engine feeds the
  // rest after the reply and caches the state under them. Runs on the
  // engine's thread; must not block.
  std::function<std::vector<int32_t>(std::span<const int32_t> generated)> next_prompt_prefix;
  // With a shared store (Redis): on_done waits until the final snapshot is
  // written there (at most EngineOptions::store_report_timeout_seconds), so
  // the client's next request resumes after this one whichever replica it
  // reaches. The tokens themselves are not delayed.
  bool report_after_store = false;

  // ---- callbacks, on the engine's threads (never two at once for one
  // request), in this order; any may be empty.
  // Log-probabilities of prompt tokens prompt_logprobs_from.., once, after the prompt.
  std::function<void(std::vector<TokenLogprob>&&)> on_prompt_logprobs;
  // Rows of logits for prompt positions first .. first+n-1 ([n, V], valid
  // during the call): every row (kAll) or the last one (kLast).
  std::function<void(int64_t first, int64_t n, const float* rows)> on_prompt_logits;
  // Each generated token (lp null unless logprobs >= 0). Return false to end
  // the sequence now (FinishReason::kCallback).
  std::function<bool(int32_t id, const TokenLogprob* lp)> on_token;
  // Exactly once, last.
  std::function<void(const Result&)> on_done;
};

}  // namespace rg
