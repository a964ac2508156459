// One API request in flight: its choices (one engine request each), the text
// streamed so far, and the OpenAI-shaped JSON it answers with, built by its
// endpoint's ResponseShape (completions.h, chat_completions.h). The engine's
// callbacks feed it (on the engine's threads); the HTTP thread waits on it
// and takes Server-Sent Events or the final body. No HTTP here.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "generate/engine.h"
#include "generate/text_stream.h"
#include "server/request.h"

namespace rg::server {

// One choice being generated.
struct ChoiceState {
  int index = 0;
  size_t prompt = 0;                 // which prompt of the request
  std::unique_ptr<TextStream> text;  // null without a tokenizer
  std::string out;                   // generated text
  std::vector<int32_t> tokens;       // generated ids
  std::vector<TokenLogprob> gen_lp;  // per generated token (when logprobs >= 0)
  std::vector<TokenLogprob> prompt_lp;  // prompt tokens 1.. (echo + logprobs)
  bool done = false;
  Result result;
  size_t streamed = 0;         // generated tokens already sent in a chunk
  int64_t stream_offset = 0;   // completions: text_offset of the next streamed token
};

// OpenAI's finish_reason of a finished choice: "length" or "stop". Inline:
// the response shapes need nothing else of job.cc (the request fuzzer links
// them without the engine).
inline const char* FinishReasonOf(const ChoiceState& ch) {
  return ch.result.reason == FinishReason::kLength ? "length" : "stop";
}

// The JSON of one endpoint.
class ResponseShape {
 public:
  virtual ~ResponseShape() = default;
  virtual const char* id_prefix() const = 0;     // "cmpl-" | "chatcmpl-"
  virtual const char* object() const = 0;        // of the final body
  virtual const char* chunk_object() const = 0;  // of each streamed record
  // The choice of the first streamed record (chat: the role), or null.
  virtual json StreamStart(const ParsedRequest& r, const ChoiceState& ch) const = 0;
  // The choice of a record carrying the prompt's log-probabilities (echo), or null.
  virtual json StreamPrompt(const ParsedRequest& r, const ChoiceState& ch) const = 0;
  // The choice of a record with text `delta` and tokens [from, to); finish
  // is the finish_reason or null.
  virtual json StreamDelta(const ParsedRequest& r, ChoiceState& ch, const std::string& delta, size_t from,
                           size_t to, const char* finish) const = 0;
  // The choice in the final (non-streamed) body.
  virtual json FinalChoice(const ParsedRequest& r, const ChoiceState& ch) const = 0;
  // Chat: the tokens the client's next request will start with once it
  // appends this reply (empty: unknown).
  // `reply` is the choice's whole text as the client will see it.
  virtual std::vector<int32_t> NextPromptPrefix(const ParsedRequest&, const std::string& reply) const { return {}; }
};

class Job : public std::enable_shared_from_this<Job> {
 public:
  static std::shared_ptr<Job> Create(ParsedRequest req, const ModelInfo& model, std::unique_ptr<ResponseShape> shape);

  // The engine requests, in choice order: choice i is prompt i / n, sample
  // i % n. With a seed, sample j uses seed + j; without one, each gets a
  // random seed. Callbacks keep the job alive.
  std::vector<Request> MakeRequests();
  void SetHandles(std::vector<std::shared_ptr<RequestHandle>> handles);
  // Cancels every sequence still running (client gone).
  void Cancel(Engine& e);

  // Blocks until there is new streamed output, the job is done, or `seconds`
  // pass. Returns done().
  bool WaitFor(double seconds);
  bool done() const;

  // Streaming: the SSE records produced since the last call. The final call
  // (once done) ends with "data: [DONE]\n\n".
  std::string TakeStreamBytes();

  // Non-streaming, once done: HTTP status and JSON body (an OpenAI error body
  // if a sequence failed).
  std::pair<int, std::string> FinalResponse() const;

  const ParsedRequest& request() const { return req_; }
  const std::string& id() const { return id_; }
  struct Usage {
    int64_t prompt = 0, cached = 0, generated = 0;
    // For the log: submitted -> the first token of any choice (< 0: none
    // yet), and the choices' tokens after their first over the longest
    // choice's decode time (< 0: too few tokens to measure).
    double first_token_seconds = -1;
    double decode_tokens_per_second = -1;
  };
  Usage GetUsage() const;

 private:
  Job(ParsedRequest req, const ModelInfo& model, std::unique_ptr<ResponseShape> shape);

  void OnPromptLogprobs(size_t c, std::vector<TokenLogprob>&& lp);
  bool OnToken(size_t c, int32_t id, const TokenLogprob* lp);
  void OnDone(size_t c, const Result& r);

  json ChunkBase() const;
  Usage UsageLocked() const;
  json UsageJson() const;
  void PushEvent(const json& chunk);

  ParsedRequest req_;
  ModelInfo model_;
  std::unique_ptr<ResponseShape> shape_;
  std::string id_;
  int64_t created_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<ChoiceState>> choices_;
  std::vector<std::shared_ptr<RequestHandle>> handles_;
  size_t remaining_;
  std::string stream_buf_;
  bool done_ = false;
};

}  // namespace rg::server
