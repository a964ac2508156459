// The generation engine: the one loop that every front end drives (the CLI
// commands `generate`, `chat`, `score`, `perplexity`, `forward`, the HTTP
// server, the Python and C APIs). A CLI command is one client with one slot;
// the server is many clients.
//
// Continuous batching. The engine owns `parallel` State slots (constant size
// each: RecurrentGemma's state does not grow with the sequence), one Scratch
// sized for the largest step and one logits buffer. A worker thread runs
// steps; each step is ONE Forward call whose SeqChunks are
//   * every decoding sequence's pending token (1 row),
//   * tokens fed after a sequence ended (its last reported token, a chat
//     reply's closing turn tokens) so its final state can be cached,
//   * prompt chunks of sequences still prefilling, in arrival order, within a
//     row budget (`prefill_chunk`; `logits_chunk` when the prompt's own
//     log-probabilities are wanted, which needs every row's logits),
// so a long prompt never stalls the others for more than one bounded chunk.
// New sequences take free slots between steps; finished ones leave at once.
// Every sequence has its own sampler (seeded per request), and Forward's
// rows are independent per sequence, so a request's output does not depend
// on what else is running.
//
// The state cache (generate/state_cache.h). A sequence in a slot starts from
// the longest cached snapshot whose tokens are a prefix of its prompt (memory
// first, then, asynchronously, the stores) and prefills only the rest.
// Snapshots are taken at the end of every prompt (with its last logits),
// every `checkpoint_every` prompt tokens, and at the end of every finished
// sequence (prompt + generated tokens; for chat, under the tokens the
// client's next request will start with: Request::next_prompt_prefix, fed
// after the reply, or after the end-of-prompt snapshot when the reply
// re-renders as other tokens than were generated).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/threads.h"
#include "generate/request.h"
#include "generate/session.h"  // DefaultPrefillChunk
#include "generate/state_cache.h"
#include "model/griffin.h"

namespace rg {

struct EngineOptions {
  int parallel = 1;                            // State slots = sequences run together
  int64_t max_queue = 64;                      // sequences waiting for a slot; more are refused
  int64_t prefill_chunk = 0;                   // prompt rows per step (all prefilling sequences together; 0: DefaultPrefillChunk)
  int64_t logits_chunk = 16;                   // the same when every prompt row's logits are needed
  int max_top_logprobs = 20;                   // bound on Request::logprobs / prompt_logprobs
  size_t cache_bytes = 0;                      // state cache budget; 0 = no cache
  int64_t checkpoint_every = 512;              // prompt snapshot interval (0 = only prompt ends)
  double store_fetch_timeout_seconds = 2;      // a store lookup slower than this is a miss
  double store_report_timeout_seconds = 1;     // Request::report_after_store waits at most this
  // Ids >= this are never sampled (0 = the whole vocabulary): the ids of a
  // padded vocabulary that the tokenizer has no text for (cli/model_files.h).
  int64_t sample_vocab = 0;
  KernelOptions kernels;  // how products compute (--precision); ops/kernel_context.h
};

struct EngineStats {
  int slots_total = 0;
  int slots_busy = 0;
  int64_t queued = 0;
  int64_t max_queue = 0;
  bool draining = false;
  uint64_t submitted = 0;  // sequences accepted
  uint64_t rejected = 0;   // sequences refused (queue full / draining)
  uint64_t completed = 0;  // finished length / stop / callback
  uint64_t cancelled = 0;
  uint64_t errors = 0;
  uint64_t prompt_tokens = 0;  // prompt rows run
  uint64_t cached_tokens = 0;  // prompt tokens restored from snapshots instead
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;        // Forward calls
  double busy_seconds = 0;   // time spent in steps
  // Per-sequence speed, summed over the sequences that finished without an
  // error: prefill = the prompt rows each ran / its time from getting a slot
  // to its first token; decode = its tokens after the first / the time from
  // the first token to its end. Their ratios are what one client sees.
  uint64_t prefill_tokens = 0;
  double prefill_seconds = 0;
  uint64_t decode_tokens = 0;
  double decode_seconds = 0;
};

// Returned by Submit; Cancel() it from any thread.
class RequestHandle {
 public:
  bool cancel_requested() const { return cancel_.load(std::memory_order_relaxed); }

 private:
  friend class Engine;
  std::atomic<bool> cancel_{false};
};

class Engine {
 public:
  Engine(std::shared_ptr<const Weights> weights, ThreadPool& pool, EngineOptions opt);
  ~Engine();  // cancels whatever is left (on_done kCancelled) and joins
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  enum class Admission { kAccepted, kQueueFull, kDraining };

  // Queues the requests, all or none: refused (no callback runs) when they do
  // not all fit in the queue or the engine is draining. Throws rg::Error for
  // an invalid request (prompt ids outside the vocabulary, bad sampling
  // parameters, too many alternatives, ...): nothing is queued then.
  Admission Submit(std::vector<Request> reqs, std::vector<std::shared_ptr<RequestHandle>>* handles = nullptr);

  // One request to the end, waited for (a CLI command). Setting *cancel
  // (e.g. from a signal handler) cancels it. Throws rg::Error if it is
  // invalid or cannot be queued.
  Result Run(Request req, const std::atomic<bool>* cancel = nullptr);

  // Ends the sequence soon (between steps); on_done gets kCancelled. Safe at
  // any time, repeatedly, or after it finished.
  void Cancel(RequestHandle& h);
  void CancelAll();  // every queued and running sequence (e.g. a second SIGTERM)

  // Stop accepting (Submit returns kDraining) and wait until everything
  // accepted has finished, or `timeout_seconds` (< 0: no limit). True if idle.
  bool Drain(double timeout_seconds = -1);

  EngineStats Stats() const;
  StateCache* cache() { return cache_.get(); }  // null without a cache
  const Weights& weights() const { return *weights_; }
  const EngineOptions& options() const { return opt_; }

 private:
  struct Seq;
  void Loop();
  void Validate(const Request& r) const;
  void Start(Seq& s);
  void LookUp(Seq& s);
  int64_t CacheLimit(const Seq& s) const;
  bool SnapshotComing(const Seq& s, int64_t have) const;
  void Resume(Seq& s, SnapshotPtr snap);
  void Step();
  void AfterPromptChunk(Seq& s, const SeqChunk& ch, const float* rows);
  void Emit(Seq& s, const float* row);
  void EndSequence(Seq& s, FinishReason reason, int32_t unfed, std::string error = {});
  void Report(Seq& s);
  void FinalizeResult(Seq& s);          // the Result's last fields and the counters
  void ReportAfterStore(Seq& s);        // on_done once the final snapshot is in the stores
  void DeliverReports(bool all);        // due reports of ReportAfterStore
  void FinalSnapshot(Seq& s);
  void KeepFinalLogits(Seq& s, const float* row);  // into Request::final_logits
  void Abort(Seq& s, FinishReason reason, std::string error);  // ends it now, whatever its phase
  template <class Fn>
  void Guarded(Seq& s, Fn&& fn);  // fn(); an exception ends s with kError
  void Release(Seq& s);
  SnapshotPtr CacheSnapshot(Seq& s, const float* logits, std::function<void()> stored = {});  // null if none taken

  std::shared_ptr<const Weights> weights_;
  ThreadPool& pool_;
  EngineOptions opt_;
  int64_t vocab_;
  std::unique_ptr<StateCache> cache_;

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
  struct PendingReport {  // a finished sequence's on_done, waiting for its snapshot to be stored
    Result result;
    std::function<void(const Result&)> on_done;
    std::shared_ptr<std::atomic<bool>> stored;
    std::chrono::steady_clock::time_point deadline;
  };
  std::vector<PendingReport> pending_reports_;  // under mu_
  int busy_slots_ = 0;   // slots taken (under mu_)
  int64_t in_hand_ = 0;  // taken from the queue, being finished without a slot (under mu_)
  bool draining_ = false;
  bool stop_ = false;
  bool wake_ = false;
  bool cancel_all_ = false;
  EngineStats stats_;  // counters, under mu_
  std::thread worker_;
};

}  // namespace rg
