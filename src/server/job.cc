#include "server/job.h"

#include <chrono>
#include <random>

namespace rg::server {

std::shared_ptr<Job> Job::Create(ParsedRequest req, const ModelInfo& model, std::unique_ptr<ResponseShape> shape) {
  return std::shared_ptr<Job>(new Job(std::move(req), model, std::move(shape)));
}

Job::Job(ParsedRequest req, const ModelInfo& model, std::unique_ptr<ResponseShape> shape)
    : req_(std::move(req)),
      model_(model),
      shape_(std::move(shape)),
      id_(NewResponseId(shape_->id_prefix())),
      created_(UnixTime()) {
  for (size_t p = 0; p < req_.prompts.size(); ++p)
    for (int j = 0; j < req_.n; ++j) {
      auto ch = std::make_unique<ChoiceState>();
      ch->index = int(choices_.size());
      ch->prompt = p;
      if (model_.tokenizer) ch->text = std::make_unique<TextStream>(*model_.tokenizer, req_.stop);
      if (req_.echo) ch->stream_offset = int64_t(req_.prompt_texts[p].size());
      choices_.push_back(std::move(ch));
    }
  remaining_ = choices_.size();
}

std::vector<Request> Job::MakeRequests() {
  std::vector<Request> out;
  auto self = shared_from_this();
  std::random_device rd;
  for (size_t c = 0; c < choices_.size(); ++c) {
    const ChoiceState& ch = *choices_[c];
    Request s;
    s.prompt = req_.prompts[ch.prompt];
    s.sampling = req_.sampling;
    const uint64_t j = uint64_t(c % size_t(req_.n));
    s.sampling.seed = req_.seed_given ? req_.sampling.seed + j : (uint64_t(rd()) << 32 | rd());
    s.max_tokens = req_.max_tokens;
    s.ignore_eos = req_.ignore_eos;
    s.stop_ids = req_.stop_ids;
    s.logit_bias = req_.logit_bias;
    if (req_.grammar) s.grammar = {req_.grammar, model_.grammar_trie};
    s.logprobs = req_.logprobs;
    if (req_.prompt_logprobs()) {
      s.prompt_logprobs = req_.logprobs;
      s.prompt_logprobs_from = 1;
    }
    s.cache = req_.cache_prompt;
    s.cache_hints = req_.cache_hints;
    // Chat: the engine asks once the sequence has ended: after OnDone, or
    // before it when the answer waits for the final snapshot to reach a
    // shared store (Request::report_after_store). Then the text still held
    // back by the stream (a possible stop string's start) is what OnDone's
    // Finish() will release: a copy of the stream gives it.
    if (req_.endpoint == Endpoint::kChat)
      s.next_prompt_prefix = [self, c](std::span<const int32_t>) {
        std::lock_guard<std::mutex> lk(self->mu_);
        const ChoiceState& ch = *self->choices_[c];
        std::string reply = ch.out;
        if (!ch.done && ch.text) reply += TextStream(*ch.text).Finish();
        return self->shape_->NextPromptPrefix(self->req_, reply);
      };
    s.on_prompt_logprobs = [self, c](std::vector<TokenLogprob>&& lp) { self->OnPromptLogprobs(c, std::move(lp)); };
    s.on_token = [self, c](int32_t id, const TokenLogprob* lp) { return self->OnToken(c, id, lp); };
    s.on_done = [self, c](const Result& r) { self->OnDone(c, r); };
    out.push_back(std::move(s));
  }
  // Streams open with the role (chat) or the echoed prompt (completions,
  // unless the prompt's log-probabilities come with it later).
  if (req_.stream) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& ch : choices_) {
      json choice = shape_->StreamStart(req_, *ch);
      if (choice.is_null()) continue;
      json chunk = ChunkBase();
      chunk["choices"] = json::array({std::move(choice)});
      PushEvent(chunk);
    }
  }
  return out;
}

void Job::SetHandles(std::vector<std::shared_ptr<RequestHandle>> handles) {
  std::lock_guard<std::mutex> lk(mu_);
  handles_ = std::move(handles);
}

void Job::Cancel(Engine& e) {
  std::vector<std::shared_ptr<RequestHandle>> hs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    hs = handles_;
  }
  for (auto& h : hs) e.Cancel(*h);
}

bool Job::WaitFor(double seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return done_ || !stream_buf_.empty(); });
  return done_;
}

bool Job::done() const {
  std::lock_guard<std::mutex> lk(mu_);
  return done_;
}

std::string Job::TakeStreamBytes() {
  std::lock_guard<std::mutex> lk(mu_);
  std::string out;
  out.swap(stream_buf_);
  return out;
}

Job::Usage Job::UsageLocked() const {
  Usage u;
  for (const auto& pr : req_.prompts) u.prompt += int64_t(pr.size());
  // cached_tokens: per prompt, the most any of its choices resumed from.
  std::vector<int64_t> cached(req_.prompts.size(), 0);
  int64_t decoded = 0;
  double decode_seconds = 0;
  for (const auto& ch : choices_) {
    const Result& r = ch->result;
    u.generated += int64_t(ch->tokens.size());
    cached[ch->prompt] = std::max(cached[ch->prompt], r.cached_tokens);
    if (!ch->done || r.generated_tokens == 0) continue;
    const double first = r.queue_seconds + r.prefill_seconds;
    if (u.first_token_seconds < 0 || first < u.first_token_seconds) u.first_token_seconds = first;
    decoded += r.generated_tokens - 1;
    decode_seconds = std::max(decode_seconds, r.decode_seconds);  // the choices decode together
  }
  for (int64_t c : cached) u.cached += c;
  if (decoded > 0 && decode_seconds > 0) u.decode_tokens_per_second = double(decoded) / decode_seconds;
  return u;
}

Job::Usage Job::GetUsage() const {
  std::lock_guard<std::mutex> lk(mu_);
  return UsageLocked();
}

json Job::ChunkBase() const {
  return json{{"id", id_}, {"object", shape_->chunk_object()}, {"created", created_}, {"model", model_.id}};
}

json Job::UsageJson() const {
  const Usage u = UsageLocked();
  return json{{"prompt_tokens", u.prompt},
              {"completion_tokens", u.generated},
              {"total_tokens", u.prompt + u.generated},
              {"prompt_tokens_details", {{"cached_tokens", u.cached}}}};
}

void Job::PushEvent(const json& chunk) {
  stream_buf_ += "data: ";
  stream_buf_ += Dump(chunk);
  stream_buf_ += "\n\n";
}

void Job::OnPromptLogprobs(size_t c, std::vector<TokenLogprob>&& lp) {
  std::lock_guard<std::mutex> lk(mu_);
  ChoiceState& ch = *choices_[c];
  ch.prompt_lp = std::move(lp);
  if (req_.stream) {
    json choice = shape_->StreamPrompt(req_, ch);
    if (!choice.is_null()) {
      json chunk = ChunkBase();
      chunk["choices"] = json::array({std::move(choice)});
      PushEvent(chunk);
    }
  }
  cv_.notify_all();
}

bool Job::OnToken(size_t c, int32_t id, const TokenLogprob* lp) {
  std::lock_guard<std::mutex> lk(mu_);
  ChoiceState& ch = *choices_[c];
  ch.tokens.push_back(id);
  if (lp) ch.gen_lp.push_back(*lp);
  std::string delta;
  bool stopped = false;
  if (ch.text) delta = ch.text->Push(id, &stopped);
  ch.out += delta;
  if (req_.stream && (!delta.empty() || req_.logprobs >= 0 || req_.return_tokens)) {
    const size_t from = ch.streamed, to = ch.tokens.size();
    json choice = shape_->StreamDelta(req_, ch, delta, from, to, nullptr);
    if (req_.return_tokens) choice["tokens"] = std::vector<int32_t>(ch.tokens.begin() + long(from), ch.tokens.end());
    ch.streamed = to;
    json chunk = ChunkBase();
    chunk["choices"] = json::array({std::move(choice)});
    PushEvent(chunk);
    cv_.notify_all();
  }
  return !stopped;
}

void Job::OnDone(size_t c, const Result& r) {
  std::lock_guard<std::mutex> lk(mu_);
  ChoiceState& ch = *choices_[c];
  if (ch.done) return;
  ch.done = true;
  ch.result = r;
  const bool ok = r.reason != FinishReason::kError && r.reason != FinishReason::kCancelled;
  std::string rest;
  if (ok && ch.text) rest = ch.text->Finish();
  ch.out += rest;
  --remaining_;
  if (req_.stream) {
    if (!ok) {
      const ApiError e = r.reason == FinishReason::kError
                             ? ApiError(500, "generation failed: " + r.error)
                             : ApiError(503, "the request was cancelled (the server is shutting down)");
      PushEvent(ErrorJson(e));
    } else {
      const size_t from = ch.streamed, to = ch.tokens.size();
      json choice = shape_->StreamDelta(req_, ch, rest, from, to, FinishReasonOf(ch));
      if (req_.return_tokens) choice["tokens"] = std::vector<int32_t>(ch.tokens.begin() + long(from), ch.tokens.end());
      ch.streamed = to;
      json chunk = ChunkBase();
      chunk["choices"] = json::array({std::move(choice)});
      // Usage rides on the last chunk unless the client asked for the
      // separate usage chunk (stream_options.include_usage).
      if (remaining_ == 0 && !req_.include_usage) chunk["usage"] = UsageJson();
      PushEvent(chunk);
    }
    if (remaining_ == 0) {
      if (req_.include_usage) {
        json chunk = ChunkBase();
        chunk["choices"] = json::array();
        chunk["usage"] = UsageJson();
        PushEvent(chunk);
      }
      stream_buf_ += "data: [DONE]\n\n";
    }
  }
  if (remaining_ == 0) done_ = true;
  cv_.notify_all();
}

std::pair<int, std::string> Job::FinalResponse() const {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& ch : choices_) {
    if (ch->result.reason == FinishReason::kError)
      return {500, Dump(ErrorJson(ApiError(500, "generation failed: " + ch->result.error)))};
    if (ch->result.reason == FinishReason::kCancelled)
      return {503, Dump(ErrorJson(ApiError(503, "the request was cancelled (the server is shutting down)")))};
  }
  json choices = json::array();
  for (const auto& ch : choices_) {
    json c = shape_->FinalChoice(req_, *ch);
    if (req_.return_tokens) c["tokens"] = ch->tokens;
    choices.push_back(std::move(c));
  }
  json body = {{"id", id_},
               {"object", shape_->object()},
               {"created", created_},
               {"model", model_.id},
               {"choices", std::move(choices)},
               {"usage", UsageJson()}};
  return {200, Dump(body)};
}

}  // namespace rg::server
