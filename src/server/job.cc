#include "server/job.h"

#include <chrono>
#include <random>

namespace rg::server {

struct Job::Choice {
  int index = 0;
  size_t prompt = 0;
  std::unique_ptr<TextStream> text;  // null without a tokenizer
  std::string out;                   // generated text
  std::vector<int32_t> tokens;       // generated ids
  std::vector<TokenLogprob> gen_lp;  // per generated token (when logprobs >= 0)
  std::vector<TokenLogprob> prompt_lp;  // prompt tokens 1.. (echo + logprobs)
  bool done = false;
  SeqResult result;
  size_t streamed = 0;         // generated tokens already sent in a chunk
  int64_t stream_offset = 0;   // text_offset of the next streamed token
};

namespace {

size_t TextLen(const Tokenizer* tok, int32_t id) {
  if (!tok || id < 0 || id >= tok->vocab_size() || tok->IsControl(id)) return 0;
  if (tok->IsByte(id)) return 1;
  return tok->Surface(id).size();
}

}  // namespace

std::shared_ptr<Job> Job::Create(ParsedRequest req, const ModelInfo& model) {
  return std::shared_ptr<Job>(new Job(std::move(req), model));
}

Job::Job(ParsedRequest req, const ModelInfo& model)
    : req_(std::move(req)),
      model_(model),
      id_(NewResponseId(req_.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-")),
      created_(UnixTime()) {
  for (size_t p = 0; p < req_.prompts.size(); ++p)
    for (int j = 0; j < req_.n; ++j) {
      auto ch = std::make_unique<Choice>();
      ch->index = int(choices_.size());
      ch->prompt = p;
      if (model_.tokenizer) ch->text = std::make_unique<TextStream>(*model_.tokenizer, req_.stop);
      if (req_.echo) ch->stream_offset = int64_t(req_.prompt_texts[p].size());
      choices_.push_back(std::move(ch));
    }
  remaining_ = choices_.size();
}

std::vector<SeqRequest> Job::MakeSeqRequests() {
  std::vector<SeqRequest> out;
  auto self = shared_from_this();
  std::random_device rd;
  for (size_t c = 0; c < choices_.size(); ++c) {
    const Choice& ch = *choices_[c];
    SeqRequest s;
    s.prompt = req_.prompts[ch.prompt];
    s.sampling = req_.sampling;
    const uint64_t j = uint64_t(c % size_t(req_.n));
    s.sampling.seed = req_.seed_given ? req_.sampling.seed + j : (uint64_t(rd()) << 32 | rd());
    s.max_tokens = req_.max_tokens;
    s.ignore_eos = req_.ignore_eos;
    s.stop_ids = req_.stop_ids;
    s.prompt_logprobs = req_.prompt_logprobs() ? req_.logprobs : -1;
    s.logprobs = req_.logprobs;
    s.on_prompt_logprobs = [self, c](std::vector<TokenLogprob>&& lp) { self->OnPromptLogprobs(c, std::move(lp)); };
    s.on_token = [self, c](int32_t id, const TokenLogprob* lp) { return self->OnToken(c, id, lp); };
    s.on_done = [self, c](const SeqResult& r) { self->OnDone(c, r); };
    out.push_back(std::move(s));
  }
  // Streams open with the role (chat) or the echoed prompt (completions,
  // unless the prompt's log-probabilities come with it later).
  if (req_.stream) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& ch : choices_) {
      json chunk = ChunkBase();
      if (req_.endpoint == Endpoint::kChat) {
        chunk["choices"] = json::array({{{"index", ch->index},
                                          {"delta", {{"role", "assistant"}, {"content", ""}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
        PushEvent(chunk);
      } else if (req_.echo && !req_.prompt_logprobs() && !req_.prompt_texts[ch->prompt].empty()) {
        chunk["choices"] = json::array({{{"text", req_.prompt_texts[ch->prompt]},
                                          {"index", ch->index},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
        PushEvent(chunk);
      }
    }
  }
  return out;
}

void Job::SetHandles(std::vector<std::shared_ptr<SeqHandle>> handles) {
  std::lock_guard<std::mutex> lk(mu_);
  handles_ = std::move(handles);
}

void Job::Cancel(Scheduler& s) {
  std::vector<std::shared_ptr<SeqHandle>> hs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    hs = handles_;
  }
  for (auto& h : hs) s.Cancel(*h);
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

std::pair<int64_t, int64_t> Job::Usage() const {
  std::lock_guard<std::mutex> lk(mu_);
  int64_t p = 0, g = 0;
  for (const auto& pr : req_.prompts) p += int64_t(pr.size());
  for (const auto& ch : choices_) g += int64_t(ch->tokens.size());
  return {p, g};
}

json Job::ChunkBase() const {
  return json{{"id", id_},
              {"object", req_.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
              {"created", created_},
              {"model", model_.id}};
}

json Job::UsageJson() const {
  int64_t p = 0, g = 0;
  for (const auto& pr : req_.prompts) p += int64_t(pr.size());
  for (const auto& ch : choices_) g += int64_t(ch->tokens.size());
  return json{{"prompt_tokens", p}, {"completion_tokens", g}, {"total_tokens", p + g}};
}

void Job::PushEvent(const json& chunk) {
  stream_buf_ += "data: ";
  stream_buf_ += Dump(chunk);
  stream_buf_ += "\n\n";
}

const char* Job::FinishReason(const Choice& ch) const {
  return ch.result.reason == SeqFinish::kLength ? "length" : "stop";
}

json Job::CompletionLogprobs(const Choice& ch, bool with_prompt, size_t from, size_t to) const {
  const Tokenizer* tok = model_.tokenizer;
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  int64_t offset = with_prompt ? 0 : ch.stream_offset;
  auto add = [&](int32_t id, const TokenLogprob* t) {
    const std::string s = TokenString(tok, id);
    tokens.push_back(s);
    if (t) {
      lps.push_back(t->logprob);
      json top = json::object();
      for (const auto& [alt, lp] : t->top) {
        const std::string key = TokenString(tok, alt);
        if (!top.contains(key)) top[key] = lp;
      }
      if (!top.contains(s)) top[s] = t->logprob;  // the chosen token is always listed
      tops.push_back(std::move(top));
    } else {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
    }
    offsets.push_back(offset);
    offset += int64_t(TextLen(tok, id));
  };
  if (with_prompt) {
    const std::vector<int32_t>& prompt = req_.prompts[ch.prompt];
    for (size_t i = 0; i < prompt.size(); ++i)
      add(prompt[i], i > 0 && i - 1 < ch.prompt_lp.size() ? &ch.prompt_lp[i - 1] : nullptr);
    if (req_.echo) offset = int64_t(req_.prompt_texts[ch.prompt].size());  // generated text follows the prompt text
  }
  for (size_t k = from; k < to; ++k) add(ch.tokens[k], k < ch.gen_lp.size() ? &ch.gen_lp[k] : nullptr);
  return json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(lps)},
              {"top_logprobs", std::move(tops)},
              {"text_offset", std::move(offsets)}};
}

json Job::ChatLogprobs(const Choice& ch, size_t from, size_t to) const {
  const Tokenizer* tok = model_.tokenizer;
  json content = json::array();
  for (size_t k = from; k < to && k < ch.gen_lp.size(); ++k) {
    const TokenLogprob& t = ch.gen_lp[k];
    json top = json::array();
    for (const auto& [alt, lp] : t.top)
      top.push_back({{"token", TokenString(tok, alt)}, {"logprob", lp}, {"bytes", TokenBytes(tok, alt)}});
    content.push_back({{"token", TokenString(tok, t.id)},
                       {"logprob", t.logprob},
                       {"bytes", TokenBytes(tok, t.id)},
                       {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}};
}

void Job::OnPromptLogprobs(size_t c, std::vector<TokenLogprob>&& lp) {
  std::lock_guard<std::mutex> lk(mu_);
  Choice& ch = *choices_[c];
  ch.prompt_lp = std::move(lp);
  if (req_.stream && req_.endpoint == Endpoint::kCompletions) {
    json chunk = ChunkBase();
    json choice = {{"text", req_.prompt_texts[ch.prompt]},
                   {"index", ch.index},
                   {"logprobs", CompletionLogprobs(ch, true, 0, 0)},
                   {"finish_reason", nullptr}};
    chunk["choices"] = json::array({std::move(choice)});
    PushEvent(chunk);
  }
  cv_.notify_all();
}

bool Job::OnToken(size_t c, int32_t id, const TokenLogprob* lp) {
  std::lock_guard<std::mutex> lk(mu_);
  Choice& ch = *choices_[c];
  ch.tokens.push_back(id);
  if (lp) ch.gen_lp.push_back(*lp);
  std::string delta;
  bool stopped = false;
  if (ch.text) delta = ch.text->Push(id, &stopped);
  ch.out += delta;
  if (req_.stream && (!delta.empty() || req_.logprobs >= 0 || req_.return_tokens)) {
    const size_t from = ch.streamed, to = ch.tokens.size();
    json choice;
    if (req_.endpoint == Endpoint::kChat) {
      choice = {{"index", ch.index},
                {"delta", {{"content", delta}}},
                {"logprobs", req_.logprobs >= 0 ? ChatLogprobs(ch, from, to) : json(nullptr)},
                {"finish_reason", nullptr}};
    } else {
      choice = {{"text", delta},
                {"index", ch.index},
                {"logprobs", req_.logprobs >= 0 ? CompletionLogprobs(ch, false, from, to) : json(nullptr)},
                {"finish_reason", nullptr}};
      for (size_t k = from; k < to; ++k) ch.stream_offset += int64_t(TextLen(model_.tokenizer, ch.tokens[k]));
    }
    if (req_.return_tokens) choice["tokens"] = std::vector<int32_t>(ch.tokens.begin() + long(from), ch.tokens.end());
    ch.streamed = to;
    json chunk = ChunkBase();
    chunk["choices"] = json::array({std::move(choice)});
    PushEvent(chunk);
    cv_.notify_all();
  }
  return !stopped;
}

void Job::OnDone(size_t c, const SeqResult& r) {
  std::lock_guard<std::mutex> lk(mu_);
  Choice& ch = *choices_[c];
  if (ch.done) return;
  ch.done = true;
  ch.result = r;
  const bool ok = r.reason == SeqFinish::kLength || r.reason == SeqFinish::kStop;
  std::string rest;
  if (ok && ch.text) rest = ch.text->Finish();
  ch.out += rest;
  --remaining_;
  if (req_.stream) {
    if (!ok) {
      const ApiError e = r.reason == SeqFinish::kError
                             ? ApiError(500, "generation failed: " + r.error)
                             : ApiError(503, "the request was cancelled (the server is shutting down)");
      PushEvent(ErrorJson(e));
    } else {
      const size_t from = ch.streamed, to = ch.tokens.size();
      json choice;
      if (req_.endpoint == Endpoint::kChat) {
        json delta = json::object();
        if (!rest.empty()) delta["content"] = rest;
        choice = {{"index", ch.index},
                  {"delta", std::move(delta)},
                  {"logprobs", req_.logprobs >= 0 && to > from ? ChatLogprobs(ch, from, to) : json(nullptr)},
                  {"finish_reason", FinishReason(ch)}};
      } else {
        choice = {{"text", rest},
                  {"index", ch.index},
                  {"logprobs", req_.logprobs >= 0 && to > from ? CompletionLogprobs(ch, false, from, to) : json(nullptr)},
                  {"finish_reason", FinishReason(ch)}};
      }
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
    if (ch->result.reason == SeqFinish::kError)
      return {500, Dump(ErrorJson(ApiError(500, "generation failed: " + ch->result.error)))};
    if (ch->result.reason == SeqFinish::kCancelled)
      return {503, Dump(ErrorJson(ApiError(503, "the request was cancelled (the server is shutting down)")))};
  }
  json choices = json::array();
  for (const auto& ch : choices_) {
    json c;
    if (req_.endpoint == Endpoint::kChat) {
      c = {{"index", ch->index},
           {"message", {{"role", "assistant"}, {"content", ch->out}}},
           {"logprobs", req_.logprobs >= 0 ? ChatLogprobs(*ch, 0, ch->tokens.size()) : json(nullptr)},
           {"finish_reason", FinishReason(*ch)}};
    } else {
      c = {{"text", req_.echo ? req_.prompt_texts[ch->prompt] + ch->out : ch->out},
           {"index", ch->index},
           {"logprobs", req_.logprobs >= 0 ? CompletionLogprobs(*ch, req_.echo, 0, ch->tokens.size()) : json(nullptr)},
           {"finish_reason", FinishReason(*ch)}};
    }
    if (req_.return_tokens) c["tokens"] = ch->tokens;
    choices.push_back(std::move(c));
  }
  json body = {{"id", id_},
               {"object", req_.endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
               {"created", created_},
               {"model", model_.id},
               {"choices", std::move(choices)},
               {"usage", UsageJson()}};
  return {200, Dump(body)};
}

}  // namespace rg::server
