#include "generate/engine.h"

#include <algorithm>
#include <cmath>
#include <chrono>

#include "core/error.h"
#include "generate/sequence_decoder.h"
#include "sampling/logprobs.h"

namespace rg {

namespace {
using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

struct Engine::Seq {
  enum class Phase {
    kAwaitSnapshot,  // waiting one step for a snapshot another sequence is finishing
    kFetching,     // waiting for a store lookup (the state cache's slower tiers)
    kPrefill,      // feeding the prompt
    kSampleFirst,  // the prompt is in the state; sample from first_logits (no Forward row)
    kDecode,       // feeding `pending`, sampling the next
    kFinalize,     // ended; feeding `tail` so the final state holds it
  };
  struct Fetch {  // shared with the store thread that answers it
    std::mutex mu;
    bool done = false;
    SnapshotPtr snap;
  };

  Request req;
  std::shared_ptr<RequestHandle> handle;
  std::unique_ptr<SequenceDecoder> decoder;
  Phase phase = Phase::kPrefill;
  int slot = -1;
  State* state = nullptr;
  bool caching = false;         // looks up and inserts snapshots
  int64_t prefilled = 0;        // prompt tokens in the state (restored or fed)
  std::vector<int32_t> fed;     // caching: every token in the state, from position 0
  int64_t snapshot_at = -1;     // position of the last snapshot taken (no duplicates)
  int32_t pending = -1;         // kDecode: the token to feed next
  std::vector<int32_t> tail;    // kFinalize: tokens to feed after the end
  size_t tail_fed = 0;
  SnapshotPtr resumed;          // the snapshot restored (keeps its logits alive)
  SnapshotPtr prompt_end;       // the snapshot taken at the end of the prompt
  const float* first_logits = nullptr;  // kSampleFirst: [V]
  std::shared_ptr<Fetch> fetch;
  SnapshotPtr mem_hit;          // kFetching: what memory had
  Clock::time_point fetch_deadline;
  std::vector<TokenLogprob> prompt_lp;
  Result result;
  bool reported = false;  // on_done called (or waiting in pending_reports_)
  bool report_after_store = false;  // on_done waits for the final snapshot's store writes
  bool finished = false;  // nothing left to run: release the slot
  Clock::time_point t_submit, t_slot, t_first;
  bool sampled = false;   // t_first is set

  bool prompt_logprobs() const { return req.prompt_logprobs >= 0; }
  int64_t prompt_size() const { return int64_t(req.prompt.size()); }
};

namespace {
// The options with prefill_chunk 0 replaced by the weights' default.
EngineOptions WithPrefillChunk(EngineOptions opt, const Weights& w) {
  if (opt.prefill_chunk == 0) opt.prefill_chunk = DefaultPrefillChunk(w);
  return opt;
}
}  // namespace

Engine::Engine(std::shared_ptr<const Weights> weights, ThreadPool& pool, EngineOptions opt)
    : weights_(std::move(weights)),
      pool_(pool),
      opt_(WithPrefillChunk(opt, *weights_)),
      vocab_(weights_->config.vocab_size),
      scratch_(weights_->config,
               std::max<int64_t>(1, opt_.parallel) + std::max<int64_t>(1, opt_.prefill_chunk), pool,
               opt_.kernels) {
  RG_CHECK(opt_.parallel >= 1 && opt_.parallel <= 4096, "engine: parallel must be in [1, 4096], got ", opt_.parallel);
  RG_CHECK(opt_.max_queue >= 0, "engine: max_queue must be >= 0, got ", opt_.max_queue);
  RG_CHECK(opt_.prefill_chunk >= 1, "engine: prefill_chunk must be >= 1, got ", opt_.prefill_chunk);
  RG_CHECK(opt_.logits_chunk >= 1, "engine: logits_chunk must be >= 1, got ", opt_.logits_chunk);
  RG_CHECK(opt_.max_top_logprobs >= 0, "engine: max_top_logprobs must be >= 0");
  RG_CHECK(opt_.checkpoint_every >= 0, "engine: checkpoint_every must be >= 0, got ", opt_.checkpoint_every);
  opt_.logits_chunk = std::min(opt_.logits_chunk, opt_.prefill_chunk);
  if (opt_.cache_bytes > 0)
    cache_ = std::make_unique<StateCache>(weights_->config, FingerprintOf(*weights_), opt_.cache_bytes);
  states_.reserve(size_t(opt_.parallel));
  for (int i = 0; i < opt_.parallel; ++i) {
    states_.emplace_back(weights_->config);
    free_slots_.push_back(opt_.parallel - 1 - i);  // slot 0 is used first
  }
  // Rows of logits one step can produce: one per sequence, except a kAll
  // prompt chunk which produces up to logits_chunk.
  logits_.resize(size_t(opt_.parallel + opt_.logits_chunk) * size_t(vocab_));
  stats_.slots_total = opt_.parallel;
  stats_.max_queue = opt_.max_queue;
  worker_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    draining_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  cache_.reset();  // its store threads may still call back into a fetch: before mu_ goes
}

void Engine::Validate(const Request& r) const {
  const int64_t T = int64_t(r.prompt.size());
  for (size_t i = 0; i < r.prompt.size(); ++i)
    RG_CHECK(r.prompt[i] >= 0 && r.prompt[i] < vocab_, "token id ", r.prompt[i], " (prompt item ", i,
             ") is outside the model's vocabulary [0, ", vocab_, ")");
  for (int32_t id : r.history)
    RG_CHECK(id >= 0 && id < vocab_, "history token id ", id, " is outside the model's vocabulary [0, ", vocab_, ")");
  RG_CHECK(T > 0 || (r.state && r.initial_logits), "the prompt is empty (nothing to continue from)");
  RG_CHECK(!r.initial_logits || r.state, "initial logits continue a given state: no state was given");
  if (r.state)
    RG_CHECK(int64_t(r.state->layers.size()) == weights_->config.num_layers() && r.state->pos >= 0,
             "the given state does not belong to this model");
  RG_CHECK(r.prompt_logprobs <= opt_.max_top_logprobs && r.logprobs <= opt_.max_top_logprobs,
           "logprobs must be at most ", opt_.max_top_logprobs);
  if (r.prompt_logprobs >= 0) {
    RG_CHECK(r.prompt_logprobs_from >= 0 && r.prompt_logprobs_from <= T, "prompt_logprobs_from must be in [0, ", T,
             "], got ", r.prompt_logprobs_from);
    RG_CHECK(r.prompt_logprobs_from > 0 || r.initial_logits,
             "the log-probability of the first prompt token needs the logits before it (initial_logits)");
  }
}

Engine::Admission Engine::Submit(std::vector<Request> reqs, std::vector<std::shared_ptr<RequestHandle>>* handles) {
  std::vector<std::unique_ptr<Seq>> seqs;
  seqs.reserve(reqs.size());
  const auto now = Clock::now();
  for (Request& r : reqs) {
    Validate(r);
    auto s = std::make_unique<Seq>();
    s->req = std::move(r);
    s->decoder = std::make_unique<SequenceDecoder>(s->req, weights_->config.eos_id, vocab_,
                                                   opt_.sample_vocab);  // validates
    s->handle = std::make_shared<RequestHandle>();
    s->t_submit = now;
    s->result.prompt_tokens = s->prompt_size();
    seqs.push_back(std::move(s));
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (draining_) {
      stats_.rejected += seqs.size();
      return Admission::kDraining;
    }
    // A sequence that will get a slot at the next step does not wait in the
    // queue: count only what cannot start now.
    const int64_t free_now = int64_t(free_slots_.size()) - int64_t(queue_.size());
    const int64_t would_wait = int64_t(seqs.size()) - std::max<int64_t>(0, free_now);
    const int64_t waiting_now = std::max<int64_t>(0, int64_t(queue_.size()) - int64_t(free_slots_.size()));
    if (would_wait > 0 && waiting_now + would_wait > opt_.max_queue) {
      stats_.rejected += seqs.size();
      return Admission::kQueueFull;
    }
    if (handles) handles->clear();
    for (auto& s : seqs) {
      if (handles) handles->push_back(s->handle);
      queue_.push_back(std::move(s));
    }
    stats_.submitted += seqs.size();
    wake_ = true;
  }
  cv_.notify_all();
  return Admission::kAccepted;
}

Result Engine::Run(Request req, const std::atomic<bool>* cancel) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Result result;
  };
  auto w = std::make_shared<Wait>();
  req.on_done = [w, user = std::move(req.on_done)](const Result& r) {
    if (user) user(r);
    std::lock_guard<std::mutex> lk(w->mu);
    w->result = r;
    w->done = true;
    w->cv.notify_all();
  };
  std::vector<Request> one;
  one.push_back(std::move(req));
  std::vector<std::shared_ptr<RequestHandle>> handles;
  const Admission a = Submit(std::move(one), &handles);
  RG_CHECK(a == Admission::kAccepted,
           a == Admission::kQueueFull ? "the engine's queue is full" : "the engine is shutting down");
  std::unique_lock<std::mutex> lk(w->mu);
  bool cancelled = false;
  while (!w->done) {
    w->cv.wait_for(lk, std::chrono::milliseconds(20));
    if (!cancelled && cancel && cancel->load(std::memory_order_relaxed)) {
      cancelled = true;
      Cancel(*handles[0]);
    }
  }
  return w->result;
}

void Engine::Cancel(RequestHandle& h) {
  h.cancel_.store(true, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Engine::CancelAll() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    cancel_all_ = true;
    wake_ = true;
  }
  cv_.notify_all();
}

bool Engine::Drain(double timeout_seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  auto idle = [&] { return queue_.empty() && busy_slots_ == 0 && in_hand_ == 0 && pending_reports_.empty(); };
  if (timeout_seconds < 0) {
    idle_cv_.wait(lk, idle);
    return true;
  }
  return idle_cv_.wait_for(lk, std::chrono::duration<double>(timeout_seconds), idle);
}

EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats s = stats_;
  s.slots_busy = busy_slots_;
  s.queued = int64_t(queue_.size());
  s.draining = draining_;
  return s;
}

void Engine::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    // Between steps: drop cancelled waiters, take new sequences into free slots.
    std::vector<std::unique_ptr<Seq>> dropped, immediate;
    std::vector<Seq*> started;
    const bool stopping = stop_ || cancel_all_;
    cancel_all_ = false;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (stopping || (*it)->handle->cancel_requested()) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    while (!free_slots_.empty() && !queue_.empty()) {
      std::unique_ptr<Seq> s = std::move(queue_.front());
      queue_.pop_front();
      const Request& r = s->req;
      const bool nothing_to_run = r.max_tokens == 0 && r.prompt_logprobs < 0 && r.prompt_logits == PromptLogits::kNone &&
                                  !r.state && !(cache_ && r.cache);
      if (nothing_to_run) {
        immediate.push_back(std::move(s));
        continue;
      }
      s->slot = free_slots_.back();
      free_slots_.pop_back();
      ++busy_slots_;
      started.push_back(s.get());
      active_.push_back(std::move(s));
    }
    if (!pending_reports_.empty()) {
      lk.unlock();
      DeliverReports(stop_);
      lk.lock();
    }
    if (active_.empty() && dropped.empty() && immediate.empty()) {
      if (queue_.empty() && busy_slots_ == 0 && pending_reports_.empty()) idle_cv_.notify_all();
      if (stop_ && pending_reports_.empty()) break;
      if (pending_reports_.empty()) cv_.wait(lk, [&] { return wake_ || stop_; });
      else cv_.wait_for(lk, std::chrono::milliseconds(10), [&] { return wake_; });
      wake_ = false;
      continue;
    }
    in_hand_ = int64_t(dropped.size() + immediate.size());  // out of the queue, not finished yet
    lk.unlock();

    for (auto& s : dropped) EndSequence(*s, FinishReason::kCancelled, -1);
    for (auto& s : immediate) EndSequence(*s, FinishReason::kLength, -1);
    for (Seq* s : started) Guarded(*s, [&] { Start(*s); });
    for (auto& s : active_) {
      if (s->finished) continue;
      if (stopping) {  // shutdown or CancelAll: nothing more is fed
        Abort(*s, FinishReason::kCancelled, {});
        continue;
      }
      if (s->handle->cancel_requested() && !s->reported)
        EndSequence(*s, FinishReason::kCancelled, s->phase == Seq::Phase::kDecode ? s->pending : -1);
      if (s->phase == Seq::Phase::kAwaitSnapshot && !s->finished &&
          !SnapshotComing(*s, s->mem_hit ? s->mem_hit->pos() : 0))
        Guarded(*s, [&] { LookUp(*s); });
      if (s->phase == Seq::Phase::kFetching && !s->finished) {
        bool done;
        SnapshotPtr got;
        {
          std::lock_guard<std::mutex> g(s->fetch->mu);
          done = s->fetch->done;
          got = s->fetch->snap;
        }
        if (done || Clock::now() >= s->fetch_deadline) {
          SnapshotPtr best = s->mem_hit;
          if (done && got && (!best || got->pos() > best->pos())) best = got;
          Guarded(*s, [&] { Resume(*s, best); });
        }
      }
    }
    const bool runnable = std::any_of(active_.begin(), active_.end(), [](const auto& s) {
      return !s->finished && s->phase != Seq::Phase::kFetching;
    });
    if (runnable) {
      const auto t0 = Clock::now();
      Step();
      const double dt = Seconds(t0, Clock::now());
      std::lock_guard<std::mutex> g(mu_);
      stats_.busy_seconds += dt;
      stats_.steps += 1;
    }
    for (auto& s : active_)
      if (s->finished) Release(*s);
    std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->finished; });
    const bool fetching = std::any_of(active_.begin(), active_.end(),
                                      [](const auto& s) { return s->phase == Seq::Phase::kFetching; });

    lk.lock();
    in_hand_ = 0;
    if (!runnable && fetching && !wake_ && !stop_) {
      // Only store lookups pending: sleep until one answers (it wakes us) or
      // a deadline may have passed.
      cv_.wait_for(lk, std::chrono::milliseconds(5), [&] { return wake_ || stop_; });
    }
    wake_ = false;
  }
}

void Engine::Start(Seq& s) {
  s.t_slot = Clock::now();
  s.result.queue_seconds = Seconds(s.t_submit, s.t_slot);
  const Request& r = s.req;
  if (r.state) {  // the caller's sequence, continued where it is
    s.state = r.state;
    if (r.initial_logits) {
      if (s.prompt_logprobs() && r.prompt_logprobs_from == 0)
        s.prompt_lp.push_back(ComputeLogprob(r.initial_logits, vocab_, r.prompt[0], r.prompt_logprobs));
      if (r.prompt.empty()) {
        s.phase = Seq::Phase::kSampleFirst;
        s.first_logits = r.initial_logits;
        return;
      }
    }
    s.phase = Seq::Phase::kPrefill;
    return;
  }
  s.state = &states_[size_t(s.slot)];
  s.caching = cache_ && r.cache;
  if (!s.caching) return Resume(s, nullptr);
  LookUp(s);
}

// The longest usable prefix: snapshots may cover the prompt up to `limit`
// (where a scored or sampled token follows, the snapshot must carry the
// logits that predict it).
int64_t Engine::CacheLimit(const Seq& s) const {
  const int64_t T = s.prompt_size();
  return s.prompt_logprobs() ? std::min(T, s.req.prompt_logprobs_from) : T;
}

// Another sequence that is feeding the last tokens of a snapshot this prompt
// extends (a reply's last token, a chat turn's closing tokens) will insert it
// within a step or two: a client that sends its next request right after the
// answer would otherwise just miss it.
bool Engine::SnapshotComing(const Seq& s, int64_t have) const {
  const std::vector<int32_t>& p = s.req.prompt;
  const int64_t limit = CacheLimit(s);
  for (const auto& o : active_) {
    if (o.get() == &s || o->finished || o->phase != Seq::Phase::kFinalize || !o->caching) continue;
    const int64_t n = int64_t(o->fed.size() + o->tail.size() - o->tail_fed);
    if (n <= have || n > limit || (n == limit && limit == s.prompt_size())) continue;  // no logits there
    if (!std::equal(o->fed.begin(), o->fed.end(), p.begin())) continue;
    if (!std::equal(o->tail.begin() + long(o->tail_fed), o->tail.end(), p.begin() + long(o->fed.size()))) continue;
    return true;
  }
  return false;
}

void Engine::LookUp(Seq& s) {
  const Request& r = s.req;
  const int64_t limit = CacheLimit(s);
  SnapshotPtr hit = cache_->Lookup(r.prompt, limit);
  if (SnapshotComing(s, hit ? hit->pos() : 0)) {
    s.phase = Seq::Phase::kAwaitSnapshot;  // LookUp again once it is in
    s.mem_hit = hit;
    return;
  }
  if (!cache_->has_stores()) return Resume(s, hit);
  std::vector<int64_t> lengths = r.cache_hints;
  if (opt_.checkpoint_every > 0)
    for (int64_t n = opt_.checkpoint_every; n <= limit; n += opt_.checkpoint_every) lengths.push_back(n);
  lengths.push_back(limit);
  s.phase = Seq::Phase::kFetching;
  s.mem_hit = hit;
  s.fetch = std::make_shared<Seq::Fetch>();
  s.fetch_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(opt_.store_fetch_timeout_seconds));
  cache_->FetchAsync(r.prompt, std::move(lengths), hit ? hit->pos() : 0, limit,
                     [this, f = s.fetch](SnapshotPtr snap) {
                       {
                         std::lock_guard<std::mutex> g(f->mu);
                         f->snap = std::move(snap);
                         f->done = true;
                       }
                       {
                         std::lock_guard<std::mutex> g(mu_);
                         wake_ = true;
                       }
                       cv_.notify_all();
                     });
}

void Engine::Resume(Seq& s, SnapshotPtr snap) {
  s.fetch.reset();
  s.mem_hit.reset();
  if (!snap) {
    s.state->Reset();
    s.phase = Seq::Phase::kPrefill;
    return;
  }
  const Config& c = weights_->config;
  snap->Restore(c, s.state);
  s.resumed = snap;
  s.prefilled = snap->pos();
  s.fed = snap->tokens();
  s.snapshot_at = snap->pos();
  s.result.cached_tokens = snap->pos();
  {
    std::lock_guard<std::mutex> g(mu_);
    stats_.cached_tokens += uint64_t(snap->pos());
  }
  const Request& r = s.req;
  const int64_t T = s.prompt_size();
  // The token right after the snapshot, when it is scored, is scored from
  // the snapshot's logits (StateCache::Lookup guarantees them there).
  if (s.prompt_logprobs() && s.prefilled >= r.prompt_logprobs_from && s.prefilled < T)
    s.prompt_lp.push_back(ComputeLogprob(snap->logits(), vocab_, r.prompt[size_t(s.prefilled)], r.prompt_logprobs));
  if (s.prefilled == T) {
    s.phase = Seq::Phase::kSampleFirst;
    s.first_logits = snap->logits();
    s.prompt_end = snap;
  } else {
    s.phase = Seq::Phase::kPrefill;
  }
}

SnapshotPtr Engine::CacheSnapshot(Seq& s, const float* logits, std::function<void()> stored) {
  if (!s.caching || (s.state->pos == s.snapshot_at && !logits)) {
    if (stored) stored();
    return nullptr;
  }
  RG_DCHECK(int64_t(s.fed.size()) == s.state->pos);
  SnapshotPtr snap = Snapshot::Capture(*s.state, weights_->config, s.fed, logits);
  cache_->Insert(snap, false, std::move(stored));
  s.snapshot_at = s.state->pos;
  return snap;
}

void Engine::FinalizeResult(Seq& s) {
  s.reported = true;
  const auto now = Clock::now();
  s.result.generated_tokens = s.decoder->generated();
  s.result.stop_token = s.decoder->stop_token();
  s.result.total_seconds = Seconds(s.t_submit, now);
  if (s.sampled) s.result.decode_seconds = Seconds(s.t_first, now);
  else if (s.slot >= 0) s.result.prefill_seconds = Seconds(s.t_slot, now);
  std::lock_guard<std::mutex> lk(mu_);
  const Result& res = s.result;
  if (res.reason != FinishReason::kError) {
    stats_.prefill_tokens += uint64_t(std::max<int64_t>(0, res.prompt_tokens - res.cached_tokens));
    stats_.prefill_seconds += res.prefill_seconds;
    if (res.generated_tokens > 1) {
      stats_.decode_tokens += uint64_t(res.generated_tokens - 1);
      stats_.decode_seconds += res.decode_seconds;
    }
  }
  switch (s.result.reason) {
    case FinishReason::kLength:
    case FinishReason::kStop:
    case FinishReason::kCallback: ++stats_.completed; break;
    case FinishReason::kCancelled: ++stats_.cancelled; break;
    case FinishReason::kError: ++stats_.errors; break;
  }
}

namespace {
void CallOnDone(const std::function<void(const Result&)>& fn, const Result& r) {
  if (!fn) return;
  try {
    fn(r);
  } catch (...) {
  }
}
}  // namespace

void Engine::Report(Seq& s) {
  if (s.reported) return;
  FinalizeResult(s);
  CallOnDone(s.req.on_done, s.result);
}

void Engine::ReportAfterStore(Seq& s) {
  if (s.reported) return;
  FinalizeResult(s);
  PendingReport p;
  p.result = s.result;
  p.on_done = std::move(s.req.on_done);
  p.stored = std::make_shared<std::atomic<bool>>(false);
  p.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(opt_.store_report_timeout_seconds));
  auto flag = p.stored;
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_reports_.push_back(std::move(p));
  }
  CacheSnapshot(s, nullptr, [this, flag] {
    flag->store(true);
    {
      std::lock_guard<std::mutex> g(mu_);
      wake_ = true;
    }
    cv_.notify_all();
  });
}

void Engine::DeliverReports(bool all) {
  std::vector<PendingReport> due;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const auto now = Clock::now();
    for (auto it = pending_reports_.begin(); it != pending_reports_.end();) {
      if (all || it->stored->load() || now >= it->deadline) {
        due.push_back(std::move(*it));
        it = pending_reports_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const PendingReport& p : due) CallOnDone(p.on_done, p.result);
}

// The sequence has ended (or was cancelled). What is left: feeding the last
// reported token (and, for chat, the tokens the next request starts with)
// when the final state is kept, then the final snapshot.
void Engine::EndSequence(Seq& s, FinishReason reason, int32_t unfed, std::string error) {
  if (s.reported || s.phase == Seq::Phase::kFinalize) return;
  s.result.reason = reason;
  s.result.error = std::move(error);
  if (reason == FinishReason::kError || s.slot < 0) {
    s.finished = true;
    return Report(s);
  }
  if (s.req.state) {  // the caller's state must hold every reported token
    if (unfed >= 0) {
      s.tail = {unfed};
      s.phase = Seq::Phase::kFinalize;
    } else {
      s.finished = true;
      Report(s);
    }
    return;
  }
  // The client has its answer now, unless it asked to wait for the final
  // snapshot to reach the shared stores.
  s.report_after_store = s.caching && s.req.report_after_store && cache_->has_stores() &&
                         reason != FinishReason::kCancelled;
  if (!s.report_after_store) Report(s);
  if (!s.caching || reason == FinishReason::kCancelled || s.phase == Seq::Phase::kFetching ||
      s.prefilled < s.prompt_size()) {
    s.finished = true;
    return Report(s);
  }
  std::vector<int32_t> target;
  if (s.req.next_prompt_prefix) {
    try {
      target = s.req.next_prompt_prefix(s.decoder->generated_ids());
    } catch (...) {
      target.clear();
    }
  } else {
    target = s.fed;
    if (unfed >= 0) target.push_back(unfed);
  }
  for (int32_t id : target)
    if (id < 0 || id >= vocab_) target.clear();
  const bool extends = target.size() >= s.fed.size() && std::equal(s.fed.begin(), s.fed.end(), target.begin());
  const bool from_prompt = s.prompt_end && target.size() > s.prompt_end->tokens().size() &&
                           std::equal(s.prompt_end->tokens().begin(), s.prompt_end->tokens().end(), target.begin());
  if (!extends && from_prompt) {
    // The reply re-renders as other tokens than were generated (the text
    // re-tokenizes differently, or a stop string cut it): go back to the end
    // of the prompt and feed the tokens the next request will have instead,
    // so it still resumes after the whole reply.
    s.prompt_end->Restore(weights_->config, s.state);
    s.fed = s.prompt_end->tokens();
    s.snapshot_at = s.state->pos;
  } else if (!extends || target.empty()) {
    s.finished = true;
    return Report(s);
  }
  s.tail.assign(target.begin() + long(s.fed.size()), target.end());
  if (s.tail.empty()) {
    FinalSnapshot(s);
    s.finished = true;
  } else {
    s.phase = Seq::Phase::kFinalize;
  }
}

// The snapshot of a finished sequence, and its report if that waits for it.
void Engine::FinalSnapshot(Seq& s) {
  if (s.report_after_store) return ReportAfterStore(s);
  CacheSnapshot(s, nullptr);
  Report(s);  // a caller's state is complete now
}

void Engine::Abort(Seq& s, FinishReason reason, std::string error) {
  if (!s.reported) {
    s.result.reason = reason;
    s.result.error = std::move(error);
  }
  s.finished = true;
  Report(s);
}

template <class Fn>
void Engine::Guarded(Seq& s, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    Abort(s, FinishReason::kError, e.what());
  }
}

void Engine::Release(Seq& s) {
  if (s.slot >= 0) {
    std::lock_guard<std::mutex> lk(mu_);
    free_slots_.push_back(s.slot);
    --busy_slots_;
    s.slot = -1;
  }
}

// Samples the next token of `s` from its logits row and passes it on.
void Engine::Emit(Seq& s, const float* row) {
  if (!s.sampled) {
    s.sampled = true;
    s.t_first = Clock::now();
    s.result.prefill_seconds = Seconds(s.t_slot, s.t_first);
  }
  const SequenceDecoder::Outcome out = s.decoder->Next(row);
  if (out.token >= 0) {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.generated_tokens;
  }
  if (!out.done) {
    s.pending = out.token;
    s.phase = Seq::Phase::kDecode;
    return;
  }
  // A sampled stop id is not fed: the logits that chose it are the ones
  // after the sequence's last token.
  if (out.reason == FinishReason::kStop) KeepFinalLogits(s, row);
  EndSequence(s, out.reason, out.reason == FinishReason::kError ? -1 : out.token, out.error);
}

void Engine::KeepFinalLogits(Seq& s, const float* row) {
  if (s.req.final_logits && row && row != s.req.final_logits) std::copy(row, row + vocab_, s.req.final_logits);
}

// A prompt chunk of `s` has run: log-probabilities, raw logits, checkpoint,
// and at the prompt's end its snapshot and the first sample.
void Engine::AfterPromptChunk(Seq& s, const SeqChunk& ch, const float* rows) {
  const Request& r = s.req;
  const int64_t T = s.prompt_size(), first = s.prefilled, n = ch.n;
  s.prefilled += n;
  if (s.caching) s.fed.insert(s.fed.end(), r.prompt.begin() + first, r.prompt.begin() + first + n);
  {
    std::lock_guard<std::mutex> g(mu_);
    stats_.prompt_tokens += uint64_t(n);
  }
  if (ch.logits == LogitsWanted::kAll) {
    if (s.prompt_logprobs()) {
      // Row j predicts prompt[first + j + 1]; rows are independent, so they
      // are spread over the pool (each is a pass over the whole vocabulary).
      const int64_t j0 = std::max<int64_t>(0, r.prompt_logprobs_from - 1 - first);
      const int64_t j1 = std::min<int64_t>(n, T - 1 - first);
      if (j1 > j0) {
        const size_t base = s.prompt_lp.size();
        s.prompt_lp.resize(base + size_t(j1 - j0));
        pool_.ParallelFor(j1 - j0, 1, [&](int64_t b, int64_t e, int) {
          for (int64_t k = b; k < e; ++k) {
            const int64_t j = j0 + k;
            s.prompt_lp[base + size_t(k)] =
                ComputeLogprob(rows + j * vocab_, vocab_, r.prompt[size_t(first + j + 1)], r.prompt_logprobs);
          }
        });
      }
    }
    if (r.prompt_logits == PromptLogits::kAll && r.on_prompt_logits) {
      try {
        r.on_prompt_logits(first, n, rows);
      } catch (const std::exception& e) {
        return EndSequence(s, FinishReason::kError, -1, e.what());
      }
    }
  }
  const float* last_row = ch.logits == LogitsWanted::kAll    ? rows + (n - 1) * vocab_
                          : ch.logits == LogitsWanted::kLast ? rows
                                                             : nullptr;
  if (s.prefilled < T) {
    if (opt_.checkpoint_every > 0 && s.prefilled % opt_.checkpoint_every == 0) CacheSnapshot(s, nullptr);
    return;
  }
  s.prompt_end = CacheSnapshot(s, last_row);
  s.phase = Seq::Phase::kSampleFirst;
  s.first_logits = last_row;
}

void Engine::Step() {
  chunks_.clear();
  chunk_owner_.clear();
  emits_.clear();
  // Prompts already whole in the state (restored, or continued from given
  // logits): their prompt part ends here, without a row.
  auto prompt_done = [&](Seq& s) {
    const Request& r = s.req;
    if (r.prompt_logits == PromptLogits::kLast && r.on_prompt_logits && s.first_logits && !r.prompt.empty()) {
      try {
        r.on_prompt_logits(s.prompt_size() - 1, 1, s.first_logits);
      } catch (const std::exception& e) {
        return EndSequence(s, FinishReason::kError, -1, e.what());
      }
    }
    if (r.prompt_logprobs >= 0 && r.on_prompt_logprobs) {
      // NaN / inf logits (a broken model) fail here as they fail sampling,
      // instead of reaching the caller as null log-probabilities.
      for (size_t i = 0; i < s.prompt_lp.size(); ++i)
        if (!std::isfinite(s.prompt_lp[i].logprob))
          return EndSequence(s, FinishReason::kError, -1,
                             StrCat("the log-probability of prompt token ", i + size_t(r.prompt_logprobs_from), " is ",
                                    s.prompt_lp[i].logprob, " (the model's logits are not finite)"));
      try {
        r.on_prompt_logprobs(std::move(s.prompt_lp));
      } catch (const std::exception& e) {
        return EndSequence(s, FinishReason::kError, -1, e.what());
      }
      s.prompt_lp.clear();
    }
    if (r.max_tokens == 0) {
      KeepFinalLogits(s, s.first_logits);
      return EndSequence(s, FinishReason::kLength, -1);
    }
    emits_.push_back({&s, s.first_logits});
  };
  for (auto& p : active_)
    if (!p->finished && p->phase == Seq::Phase::kSampleFirst) prompt_done(*p);

  // 1. every decoding sequence: its pending token.
  for (auto& p : active_) {
    Seq& s = *p;
    if (s.finished || s.reported || s.phase != Seq::Phase::kDecode) continue;
    chunks_.push_back({s.state, &s.pending, 1, LogitsWanted::kLast});
    chunk_owner_.push_back(&s);
  }
  // 2. tokens fed after the end, then 3. prompt chunks in arrival order,
  // within the row budgets.
  int64_t rows = opt_.prefill_chunk, logit_rows = opt_.logits_chunk;
  for (auto& p : active_) {
    Seq& s = *p;
    if (s.finished || s.phase != Seq::Phase::kFinalize || rows == 0) continue;
    const int64_t n = std::min<int64_t>(int64_t(s.tail.size() - s.tail_fed), rows);
    rows -= n;
    const bool last = s.tail_fed + size_t(n) == s.tail.size();
    chunks_.push_back({s.state, s.tail.data() + s.tail_fed, n,
                       last && s.req.final_logits ? LogitsWanted::kLast : LogitsWanted::kNone});
    chunk_owner_.push_back(&s);
  }
  for (auto& p : active_) {
    Seq& s = *p;
    if (s.finished || s.phase != Seq::Phase::kPrefill || rows == 0) continue;
    const Request& r = s.req;
    const int64_t T = s.prompt_size();
    int64_t n = std::min(T - s.prefilled, rows);
    if (s.caching && opt_.checkpoint_every > 0) {  // end chunks on checkpoints
      const int64_t next = (s.prefilled / opt_.checkpoint_every + 1) * opt_.checkpoint_every;
      n = std::min(n, next - s.prefilled);
    }
    // Every row's logits when they are scored or handed out.
    const bool scored = s.prompt_logprobs() && s.prefilled + n >= r.prompt_logprobs_from && s.prefilled + 1 < T;
    const bool all = scored || r.prompt_logits == PromptLogits::kAll;
    if (all) n = std::min(n, logit_rows);
    if (n <= 0) continue;
    rows -= n;
    const bool last = s.prefilled + n == T;
    LogitsWanted want = LogitsWanted::kNone;
    if (all) {
      want = LogitsWanted::kAll;
      logit_rows -= n;
    } else if (last && (r.max_tokens > 0 || r.prompt_logits == PromptLogits::kLast || s.caching || r.final_logits)) {
      want = LogitsWanted::kLast;
    }
    chunks_.push_back({s.state, r.prompt.data() + s.prefilled, n, want});
    chunk_owner_.push_back(&s);
  }

  if (!chunks_.empty()) {
    try {
      Forward(*weights_, chunks_, scratch_, logits_.data());
    } catch (const std::exception& e) {
      for (Seq* s : chunk_owner_) Abort(*s, FinishReason::kError, e.what());
      chunks_.clear();
    }
  }

  const float* row = logits_.data();
  for (size_t k = 0; k < chunks_.size(); ++k) {
    const SeqChunk& ch = chunks_[k];
    Seq& s = *chunk_owner_[k];
    const int64_t nrows = LogitRows(std::span<const SeqChunk>(&ch, 1));
    switch (s.phase) {
      case Seq::Phase::kDecode:
        if (s.caching) s.fed.push_back(s.pending);
        emits_.push_back({&s, row});
        break;
      case Seq::Phase::kFinalize:
        if (s.caching) s.fed.insert(s.fed.end(), ch.tokens, ch.tokens + ch.n);
        s.tail_fed += size_t(ch.n);
        if (s.tail_fed == s.tail.size()) {
          if (ch.logits == LogitsWanted::kLast) KeepFinalLogits(s, row);
          FinalSnapshot(s);
          s.finished = true;
        }
        break;
      case Seq::Phase::kPrefill:
        AfterPromptChunk(s, ch, row);
        if (s.phase == Seq::Phase::kSampleFirst && !s.finished && !s.reported) prompt_done(s);
        break;
      default:
        break;
    }
    row += nrows * vocab_;
  }
  // Sampling (a full sort of the vocabulary for top-p) and the callbacks,
  // spread over the pool: every sequence has its own sampler, so the result
  // does not depend on which thread runs it.
  pool_.ParallelFor(int64_t(emits_.size()), 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) Emit(*emits_[size_t(i)].seq, emits_[size_t(i)].row);
  });
}

}  // namespace rg
