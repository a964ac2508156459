#include "server/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace rg::server {

namespace {
using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

const char* SeqFinishName(SeqFinish f) {
  switch (f) {
    case SeqFinish::kLength: return "length";
    case SeqFinish::kStop: return "stop";
    case SeqFinish::kCancelled: return "cancelled";
    case SeqFinish::kError: return "error";
  }
  return "?";
}

TokenLogprob ComputeLogprob(const float* row, int64_t V, int32_t id, int n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - mx);
  const double lse = mx + std::log(sum);
  auto lp = [&](int64_t i) { return float(double(row[i]) - lse); };

  TokenLogprob out;
  out.id = id;
  out.logprob = lp(id);
  if (n > 0) {
    // Keep the n best (value desc, id asc) in a small sorted array.
    std::vector<std::pair<float, int32_t>> best;
    best.reserve(size_t(n) + 1);
    for (int64_t i = 0; i < V; ++i) {
      const float x = row[i];
      if (int(best.size()) == n && !(x > best.back().first)) continue;
      auto it = std::upper_bound(best.begin(), best.end(), x,
                                 [](float v, const std::pair<float, int32_t>& e) { return v > e.first; });
      best.insert(it, {x, int32_t(i)});
      if (int(best.size()) > n) best.pop_back();
    }
    out.top.reserve(best.size());
    for (const auto& [x, i] : best) out.top.push_back({i, lp(i)});
  }
  return out;
}

struct Scheduler::Seq {
  SeqRequest req;
  std::shared_ptr<SeqHandle> handle;
  std::unique_ptr<Sampler> sampler;
  int slot = -1;
  int64_t prefilled = 0;  // prompt tokens fed so far
  int32_t pending = -1;   // decode phase: the token to feed next step
  int64_t generated = 0;
  bool done = false;
  std::vector<TokenLogprob> prompt_lp;
  SeqResult result;
  Clock::time_point t_submit, t_slot;

  bool prefilling() const { return prefilled < int64_t(req.prompt.size()); }
};

Scheduler::Scheduler(std::shared_ptr<const Weights> weights, ThreadPool& pool, SchedulerOptions opt)
    : weights_(std::move(weights)),
      pool_(pool),
      opt_(opt),
      vocab_(weights_->config.vocab_size),
      scratch_(weights_->config,
               std::max<int64_t>(1, opt.parallel) + std::max<int64_t>(1, opt.prefill_chunk), pool,
               opt.kernels) {
  RG_CHECK(opt_.parallel >= 1 && opt_.parallel <= 4096, "scheduler: parallel must be in [1, 4096], got ",
           opt_.parallel);
  RG_CHECK(opt_.max_queue >= 0, "scheduler: max_queue must be >= 0, got ", opt_.max_queue);
  RG_CHECK(opt_.prefill_chunk >= 1, "scheduler: prefill_chunk must be >= 1, got ", opt_.prefill_chunk);
  RG_CHECK(opt_.logits_chunk >= 1, "scheduler: logits_chunk must be >= 1, got ", opt_.logits_chunk);
  RG_CHECK(opt_.max_top_logprobs >= 0, "scheduler: max_top_logprobs must be >= 0");
  opt_.logits_chunk = std::min(opt_.logits_chunk, opt_.prefill_chunk);
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

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    draining_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Scheduler::Admission Scheduler::Submit(std::vector<SeqRequest> reqs,
                                       std::vector<std::shared_ptr<SeqHandle>>* handles) {
  std::vector<std::unique_ptr<Seq>> seqs;
  seqs.reserve(reqs.size());
  const auto now = Clock::now();
  for (SeqRequest& r : reqs) {
    RG_CHECK(!r.prompt.empty(), "the prompt is empty (nothing to continue from)");
    for (size_t i = 0; i < r.prompt.size(); ++i)
      RG_CHECK(r.prompt[i] >= 0 && r.prompt[i] < vocab_, "token id ", r.prompt[i], " (prompt item ", i,
               ") is outside the model's vocabulary [0, ", vocab_, ")");
    RG_CHECK(r.max_tokens >= 0, "max_tokens must be >= 0, got ", r.max_tokens);
    RG_CHECK(r.prompt_logprobs <= opt_.max_top_logprobs && r.logprobs <= opt_.max_top_logprobs,
             "logprobs must be at most ", opt_.max_top_logprobs);
    auto s = std::make_unique<Seq>();
    s->sampler = std::make_unique<Sampler>(r.sampling, int(vocab_));  // validates
    for (int32_t id : r.prompt) s->sampler->Accept(id);  // the prompt is history for the penalties
    s->req = std::move(r);
    s->handle = std::make_shared<SeqHandle>();
    s->t_submit = now;
    s->result.prompt_tokens = int64_t(s->req.prompt.size());
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
    stats_.submitted += reqs.size();
    wake_ = true;
  }
  cv_.notify_all();
  return Admission::kAccepted;
}

void Scheduler::Cancel(SeqHandle& h) {
  h.cancel_.store(true, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Scheduler::CancelAll() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    cancel_all_ = true;
    wake_ = true;
  }
  cv_.notify_all();
}

bool Scheduler::Drain(double timeout_seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  auto idle = [&] { return queue_.empty() && busy_slots_ == 0 && in_hand_ == 0; };
  if (timeout_seconds < 0) {
    idle_cv_.wait(lk, idle);
    return true;
  }
  return idle_cv_.wait_for(lk, std::chrono::duration<double>(timeout_seconds), idle);
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  SchedulerStats s = stats_;
  s.slots_busy = busy_slots_;
  s.queued = int64_t(queue_.size());
  s.draining = draining_;
  return s;
}

void Scheduler::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    // Between steps: drop cancelled waiters, take new sequences into free slots.
    std::vector<std::unique_ptr<Seq>> dropped, immediate;
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
      if (s->req.max_tokens == 0 && s->req.prompt_logprobs < 0) {
        immediate.push_back(std::move(s));  // nothing to compute
        continue;
      }
      s->slot = free_slots_.back();
      free_slots_.pop_back();
      ++busy_slots_;
      s->t_slot = Clock::now();
      s->result.queue_seconds = Seconds(s->t_submit, s->t_slot);
      active_.push_back(std::move(s));
    }
    if (active_.empty() && dropped.empty() && immediate.empty()) {
      if (queue_.empty() && busy_slots_ == 0) idle_cv_.notify_all();
      if (stop_) break;
      cv_.wait(lk, [&] { return wake_ || stop_; });
      wake_ = false;
      continue;
    }
    in_hand_ = int64_t(dropped.size() + immediate.size());  // out of the queue, not finished yet
    lk.unlock();

    for (auto& s : dropped) Finish(*s, SeqFinish::kCancelled);
    for (auto& s : immediate) Finish(*s, SeqFinish::kLength);
    for (auto& s : active_)
      if (stopping || s->handle->cancel_requested()) Finish(*s, SeqFinish::kCancelled);
    bool any = false;
    for (auto& s : active_) any |= !s->done;
    if (any) {
      const auto t0 = Clock::now();
      Step();
      const double dt = Seconds(t0, Clock::now());
      std::lock_guard<std::mutex> g(mu_);
      stats_.busy_seconds += dt;
      stats_.steps += 1;
    }
    for (auto& s : active_)
      if (s->done) Release(*s);
    std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });

    lk.lock();
    in_hand_ = 0;
  }
}

void Scheduler::Release(Seq& s) {
  if (s.slot >= 0) {
    states_[size_t(s.slot)].Reset();
    std::lock_guard<std::mutex> lk(mu_);
    free_slots_.push_back(s.slot);
    --busy_slots_;
    s.slot = -1;
  }
}

void Scheduler::Finish(Seq& s, SeqFinish reason, std::string error) {
  if (s.done) return;
  s.done = true;
  s.result.reason = reason;
  s.result.generated_tokens = s.generated;
  s.result.error = std::move(error);
  s.result.total_seconds = Seconds(s.t_submit, Clock::now());
  if (s.req.on_done) {
    try {
      s.req.on_done(s.result);
    } catch (...) {
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  switch (reason) {
    case SeqFinish::kLength:
    case SeqFinish::kStop: ++stats_.completed; break;
    case SeqFinish::kCancelled: ++stats_.cancelled; break;
    case SeqFinish::kError: ++stats_.errors; break;
  }
}

// Samples the next token of `s` from its logits row and passes it on.
void Scheduler::Emit(Seq& s, const float* row) {
  const Config& c = weights_->config;
  int32_t id;
  try {
    id = s.sampler->Sample(row);
  } catch (const std::exception& e) {
    Finish(s, SeqFinish::kError, e.what());
    return;
  }
  if (s.generated == 0) s.result.prefill_seconds = Seconds(s.t_slot, Clock::now());
  const bool is_stop = (!s.req.ignore_eos && id == c.eos_id) ||
                       std::find(s.req.stop_ids.begin(), s.req.stop_ids.end(), id) != s.req.stop_ids.end();
  if (is_stop) {
    s.result.stop_token = id;
    Finish(s, SeqFinish::kStop);
    return;
  }
  s.sampler->Accept(id);
  ++s.generated;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.generated_tokens;
  }
  bool go_on = true;
  if (s.req.on_token) {
    try {
      if (s.req.logprobs >= 0) {
        const TokenLogprob lp = ComputeLogprob(row, vocab_, id, s.req.logprobs);
        go_on = s.req.on_token(id, &lp);
      } else {
        go_on = s.req.on_token(id, nullptr);
      }
    } catch (const std::exception& e) {
      Finish(s, SeqFinish::kError, e.what());
      return;
    }
  }
  if (!go_on) Finish(s, SeqFinish::kStop);
  else if (s.generated >= s.req.max_tokens) Finish(s, SeqFinish::kLength);
  else s.pending = id;
}

void Scheduler::Step() {
  chunks_.clear();
  chunk_owner_.clear();
  // 1. every decoding sequence: its pending token.
  for (auto& p : active_) {
    Seq& s = *p;
    if (s.done || s.prefilling()) continue;
    chunks_.push_back({&states_[size_t(s.slot)], &s.pending, 1, LogitsWanted::kLast});
    chunk_owner_.push_back(&s);
  }
  // 2. prompt chunks, in arrival order, within the row budgets.
  int64_t rows = opt_.prefill_chunk, logit_rows = opt_.logits_chunk;
  for (auto& p : active_) {
    Seq& s = *p;
    if (s.done || !s.prefilling() || rows == 0) continue;
    const int64_t T = int64_t(s.req.prompt.size());
    const bool all = s.req.prompt_logprobs >= 0;
    int64_t n = std::min(T - s.prefilled, rows);
    if (all) n = std::min(n, logit_rows);
    if (n <= 0) continue;
    rows -= n;
    const bool last = s.prefilled + n == T;
    LogitsWanted want = LogitsWanted::kNone;
    if (all) {
      want = LogitsWanted::kAll;
      logit_rows -= n;
    } else if (last && s.req.max_tokens > 0) {
      want = LogitsWanted::kLast;
    }
    chunks_.push_back({&states_[size_t(s.slot)], s.req.prompt.data() + s.prefilled, n, want});
    chunk_owner_.push_back(&s);
  }
  if (chunks_.empty()) return;

  try {
    Forward(*weights_, chunks_, scratch_, logits_.data());
  } catch (const std::exception& e) {
    for (Seq* s : chunk_owner_) Finish(*s, SeqFinish::kError, e.what());
    return;
  }

  uint64_t prompt_rows = 0;
  emits_.clear();
  const float* row = logits_.data();
  for (size_t k = 0; k < chunks_.size(); ++k) {
    const SeqChunk& ch = chunks_[k];
    Seq& s = *chunk_owner_[k];
    if (!s.prefilling()) {  // decode: one row
      emits_.push_back({&s, row});
      row += vocab_;
      continue;
    }
    const int64_t T = int64_t(s.req.prompt.size());
    const int64_t first = s.prefilled;
    s.prefilled += ch.n;
    prompt_rows += uint64_t(ch.n);
    const bool last = s.prefilled == T;
    if (ch.logits == LogitsWanted::kAll) {
      for (int64_t j = 0; j < ch.n; ++j) {
        const int64_t pos = first + j;
        if (pos + 1 < T && !s.done) {
          try {
            s.prompt_lp.push_back(
                ComputeLogprob(row + j * vocab_, vocab_, s.req.prompt[size_t(pos + 1)], s.req.prompt_logprobs));
          } catch (const std::exception& e) {
            Finish(s, SeqFinish::kError, e.what());
          }
        }
      }
    }
    const float* last_row = ch.logits == LogitsWanted::kAll ? row + (ch.n - 1) * vocab_ : row;
    row += LogitRows(std::span<const SeqChunk>(&ch, 1)) * vocab_;
    if (!last || s.done) continue;
    if (s.req.prompt_logprobs >= 0 && s.req.on_prompt_logprobs) {
      try {
        s.req.on_prompt_logprobs(std::move(s.prompt_lp));
      } catch (const std::exception& e) {
        Finish(s, SeqFinish::kError, e.what());
        continue;
      }
      s.prompt_lp.clear();
    }
    if (s.req.max_tokens == 0) {
      Finish(s, SeqFinish::kLength);
      continue;
    }
    emits_.push_back({&s, last_row});
  }
  // Sampling (a full sort of the vocabulary for top-p) and the callbacks,
  // spread over the pool: every sequence has its own sampler, so the result
  // does not depend on which thread runs it.
  pool_.ParallelFor(int64_t(emits_.size()), 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) Emit(*emits_[size_t(i)].seq, emits_[size_t(i)].row);
  });
  std::lock_guard<std::mutex> lk(mu_);
  stats_.prompt_tokens += prompt_rows;
}

}  // namespace rg::server
