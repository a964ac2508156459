// Continuous batching: many sequences decode together, one pass over the
// weights per step.
//
// The Scheduler owns N State slots (constant size each: RecurrentGemma's state
// does not grow with the sequence), one Scratch sized for the largest step and
// one logits buffer. A worker thread runs steps; each step is ONE Forward call
// whose SeqChunks are
//   * every decoding sequence's pending token (1 row, LogitsWanted::kLast), and
//   * prompt chunks of sequences still prefilling, in arrival order, within a
//     row budget (`prefill_chunk`; `logits_chunk` when the prompt's own
//     log-probabilities are wanted, which needs every row's logits),
// so a long prompt never stalls the others for more than one bounded chunk.
// New sequences take free slots between steps; finished ones leave at once.
//
// Every sequence has its own Sampler (seeded per request), and Forward's rows
// are independent per sequence, so a request's output does not depend on what
// else is running.
//
// Usable without HTTP: Submit() takes callbacks, which run on the scheduler's
// threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/threads.h"
#include "model/griffin.h"
#include "sampling/sampler.h"

namespace rg::server {

// The log-probability of one token at one position, with the most likely
// alternatives there (highest first; ties: lower id first). Values are
// log_softmax of the model's (soft-capped) logits, before any sampling
// transformation (temperature, penalties, ...).
struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.f;
  std::vector<std::pair<int32_t, float>> top;
};

enum class SeqFinish {
  kLength,     // max_tokens reached
  kStop,       // EOS / a stop id (not emitted), or on_token returned false
  kCancelled,  // Cancel() or scheduler shutdown
  kError,      // e.g. NaN logits; SeqResult::error says what
};
const char* SeqFinishName(SeqFinish f);  // "length" | "stop" | "cancelled" | "error"

struct SeqResult {
  SeqFinish reason = SeqFinish::kLength;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // tokens passed to on_token
  int32_t stop_token = -1;       // the EOS / stop id that ended it, if any
  std::string error;
  double queue_seconds = 0;    // submitted -> got a slot
  double prefill_seconds = 0;  // got a slot -> first token sampled
  double total_seconds = 0;    // submitted -> done
};

struct SeqRequest {
  std::vector<int32_t> prompt;  // non-empty; ids must be inside the vocabulary
  SamplingParams sampling;
  int64_t max_tokens = 16;       // >= 0; 0 = only prefill (e.g. prompt log-probabilities)
  bool ignore_eos = false;       // when false, the model's eos_id ends the sequence
  std::vector<int32_t> stop_ids;  // more ids that end it (e.g. <end_of_turn>)
  int prompt_logprobs = -1;      // >= 0: log-probabilities of prompt tokens, with this many alternatives
  int logprobs = -1;             // >= 0: the same for every generated token

  // Called on the scheduler's threads (the worker or, for sampling, the
  // compute pool; never two at once for the same sequence), in this order.
  // Any may be empty.
  // Prompt log-probabilities of tokens 1..T-1 (token 0 has none), once, after prefill.
  std::function<void(std::vector<TokenLogprob>&&)> on_prompt_logprobs;
  // Each generated token (lp is null unless logprobs >= 0). Return false to
  // stop the sequence now (finish kStop; e.g. a stop string completed).
  std::function<bool(int32_t id, const TokenLogprob* lp)> on_token;
  // Exactly once, last.
  std::function<void(const SeqResult&)> on_done;
};

// Returned by Submit; Cancel() it from any thread.
class SeqHandle {
 public:
  bool cancel_requested() const { return cancel_.load(std::memory_order_relaxed); }

 private:
  friend class Scheduler;
  std::atomic<bool> cancel_{false};
};

struct SchedulerOptions {
  int parallel = 4;            // State slots = sequences decoding together
  int64_t max_queue = 64;      // sequences waiting for a slot; more are refused
  int64_t prefill_chunk = 64;  // prompt rows per step (all prefilling sequences together)
  int64_t logits_chunk = 16;   // the same when every prompt row's logits are needed
  int max_top_logprobs = 20;   // bound on SeqRequest::prompt_logprobs / logprobs
  KernelOptions kernels;       // how the matrix products run (ops/kernel_context.h)
};

struct SchedulerStats {
  int slots_total = 0;
  int slots_busy = 0;
  int64_t queued = 0;
  int64_t max_queue = 0;
  bool draining = false;
  uint64_t submitted = 0;       // sequences accepted
  uint64_t rejected = 0;        // sequences refused (queue full / draining)
  uint64_t completed = 0;       // finished kLength / kStop
  uint64_t cancelled = 0;
  uint64_t errors = 0;
  uint64_t prompt_tokens = 0;   // prompt rows run
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;           // Forward calls
  double busy_seconds = 0;      // time spent in steps
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Weights> weights, ThreadPool& pool, SchedulerOptions opt);
  ~Scheduler();  // cancels whatever is left (on_done kCancelled) and joins
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { kAccepted, kQueueFull, kDraining };

  // Queues the sequences, all or none: refused (no callback runs) when they
  // do not all fit in the queue or the scheduler is draining. Throws
  // rg::Error for an invalid request (empty prompt, id outside the vocabulary,
  // bad sampling parameters, too many alternatives).
  Admission Submit(std::vector<SeqRequest> reqs, std::vector<std::shared_ptr<SeqHandle>>* handles);

  // Ends the sequence soon (between steps); its slot is freed and on_done
  // gets kCancelled. Safe to call at any time, repeatedly, or after it finished.
  void Cancel(SeqHandle& h);

  // Cancels every queued and running sequence (e.g. a second SIGTERM).
  void CancelAll();

  // Stop accepting (Submit returns kDraining) and wait until everything
  // accepted has finished, or until `timeout_seconds` (< 0: no limit).
  // Returns true if idle.
  bool Drain(double timeout_seconds = -1);

  SchedulerStats Stats() const;
  const Weights& weights() const { return *weights_; }
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Seq;
  void Loop();
  void Admit(std::unique_lock<std::mutex>& lk);
  void Step();
  void Finish(Seq& s, SeqFinish reason, std::string error = {});
  void Emit(Seq& s, const float* logits_row);
  void Release(Seq& s);

  std::shared_ptr<const Weights> weights_;
  ThreadPool& pool_;
  SchedulerOptions opt_;
  int64_t vocab_;

  // Owned by the worker thread (free_slots_: under mu_).
  std::vector<State> states_;
  std::vector<int> free_slots_;
  Scratch scratch_;
  std::vector<float> logits_;
  std::vector<std::unique_ptr<Seq>> active_;  // in arrival order
  std::vector<SeqChunk> chunks_;
  std::vector<Seq*> chunk_owner_;
  struct EmitItem {
    Seq* seq;
    const float* row;  // the logits to sample from
  };
  std::vector<EmitItem> emits_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the worker
  std::condition_variable idle_cv_;  // wakes Drain()
  std::deque<std::unique_ptr<Seq>> queue_;
  int busy_slots_ = 0;  // slots taken (under mu_)
  int64_t in_hand_ = 0;  // taken from the queue, being finished without a slot (under mu_)
  bool draining_ = false;
  bool stop_ = false;
  bool wake_ = false;
  bool cancel_all_ = false;
  SchedulerStats stats_;  // counters, under mu_
  std::thread worker_;
};

// log_softmax(row)[id] and the top-`n` alternatives, for a [V] logits row.
TokenLogprob ComputeLogprob(const float* row, int64_t V, int32_t id, int n);

}  // namespace rg::server
