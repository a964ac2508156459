// One API request in flight: its choices (one scheduled sequence each), the
// text streamed so far, and the OpenAI-shaped JSON it answers with. The
// scheduler's callbacks feed it (on the scheduler's threads); the HTTP thread
// waits on it and takes Server-Sent Events or the final body. No HTTP here.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "generate/text_stream.h"
#include "server/api.h"
#include "server/scheduler.h"

namespace rg::server {

class Job : public std::enable_shared_from_this<Job> {
 public:
  static std::shared_ptr<Job> Create(ParsedRequest req, const ModelInfo& model);

  // The sequences to submit, in choice order: choice i is prompt i / n,
  // sample i % n. With a seed, sample j uses seed + j; without one, each gets
  // a random seed. Callbacks keep the job alive.
  std::vector<SeqRequest> MakeSeqRequests();
  void SetHandles(std::vector<std::shared_ptr<SeqHandle>> handles);
  // Cancels every sequence still running (client gone).
  void Cancel(Scheduler& s);

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
  // For logs: prompt tokens, generated tokens.
  std::pair<int64_t, int64_t> Usage() const;

 private:
  struct Choice;
  Job(ParsedRequest req, const ModelInfo& model);

  void OnPromptLogprobs(size_t c, std::vector<TokenLogprob>&& lp);
  bool OnToken(size_t c, int32_t id, const TokenLogprob* lp);
  void OnDone(size_t c, const SeqResult& r);

  json ChunkBase() const;
  json UsageJson() const;
  void PushEvent(const json& chunk);
  json CompletionLogprobs(const Choice& ch, bool with_prompt, size_t gen_from, size_t gen_to) const;
  json ChatLogprobs(const Choice& ch, size_t from, size_t to) const;
  const char* FinishReason(const Choice& ch) const;

  ParsedRequest req_;
  ModelInfo model_;
  std::string id_;
  int64_t created_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Choice>> choices_;
  std::vector<std::shared_ptr<SeqHandle>> handles_;
  size_t remaining_;
  std::string stream_buf_;
  bool done_ = false;
};

}  // namespace rg::server
