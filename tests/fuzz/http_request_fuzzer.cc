// libFuzzer target: the HTTP request layer of `rgemma serve`, without a
// model. The input is what one connection sends: request heads and bodies,
// possibly several pipelined. Each goes through what the server does before
// any generation: ParseRequestHead (server/http_head.h: framing, limits,
// Expect), then ParseJsonBody and the endpoints' request parsing and
// validation (completions, chat, tokenize) with the Gemma tokenizer when it
// is found (RG_FUZZ_TOKENIZER, else ids only). Every refusal must be a
// one-line error with a 4xx/5xx status; nothing may crash, hang or throw
// anything else.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "model/config.h"
#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/http_head.h"
#include "server/request.h"
#include "server/tokenize.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace rg;
using namespace rg::server;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "http_request_fuzzer: invariant violated: %s\n", what);
    __builtin_trap();
  }
}

void CheckError(const ApiError& e) {
  if (e.status < 400 || e.status >= 600 || e.message.empty() || e.message.find('\n') != std::string::npos)
    std::fprintf(stderr, "http_request_fuzzer: error %d: '%s'\n", e.status, e.message.c_str());
  Check(e.status >= 400 && e.status < 600, "an error status is 4xx or 5xx");
  Check(!e.message.empty() && e.message.find('\n') == std::string::npos, "an error message is one line");
}

struct World {
  Config config = PresetConfig("2b");
  std::unique_ptr<Tokenizer> tokenizer;
  ModelInfo model;
  ServerLimits limits;
  HeadLimits head;

  World() {
#ifdef RG_FUZZ_TOKENIZER
    try {
      tokenizer = Tokenizer::Load(RG_FUZZ_TOKENIZER);
    } catch (const Error&) {
    }
#endif
    model.id = "fuzz";
    model.config = &config;
    model.tokenizer = tokenizer.get();
    // Small limits: the inputs are small, and the limits' edges get reached.
    limits.max_body_bytes = 1 << 16;
    limits.max_prompt_tokens = 512;
    limits.max_prompt_bytes = 4096;
    limits.max_tokens = 64;
    head.max_body_bytes = limits.max_body_bytes;
    head.max_head_bytes = 4096;
    head.max_line_bytes = 1024;
    head.max_headers = 32;
  }
};

// What the server does with one complete request body.
void ParseBody(const World& w, const RequestHead& h, const std::string& body) {
  try {
    const json j = ParseJsonBody(body, w.limits);
    Check(j.is_object(), "a parsed body is an object");
    const std::string_view target = h.target;
    if (target.find("chat") != std::string_view::npos) {
      const ParsedRequest r = ParseChatRequest(j, w.model, w.limits);
      Check(r.prompts.size() == 1 && !r.prompts[0].empty(), "a chat request has one prompt");
    } else if (target.find("detokenize") != std::string_view::npos) {
      Detokenize(j, w.model);
    } else if (target.find("tokenize") != std::string_view::npos) {
      Tokenize(j, w.model, w.limits);
    } else {
      const ParsedRequest r = ParseCompletionRequest(j, w.model, w.limits);
      Check(!r.prompts.empty() && int64_t(r.prompts.size()) <= w.limits.max_prompts, "1..max_prompts prompts");
      for (const auto& p : r.prompts) {
        Check(!p.empty() && int64_t(p.size()) <= w.limits.max_prompt_tokens, "a prompt within the token limit");
        for (int32_t id : p) Check(id >= 0 && id < w.config.vocab_size, "prompt ids inside the vocabulary");
      }
      Check(r.max_tokens >= 0 && r.max_tokens <= w.limits.max_tokens, "max_tokens within the limit");
      Check(r.n >= 1 && r.n <= w.limits.max_n, "n within the limit");
    }
  } catch (const ApiError& e) {
    CheckError(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const World w;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; requests < 8 && !in.empty(); ++requests) {
    const RequestHead h = ParseRequestHead(in, w.head);
    if (h.state == RequestHead::State::kIncomplete) {
      Check(in.size() <= w.head.max_head_bytes, "an incomplete head is within the limit");
      break;
    }
    if (h.state == RequestHead::State::kRefused) {
      CheckError(ApiError(h.status, h.error));
      break;
    }
    Check(h.head_bytes >= 4 && h.head_bytes <= in.size() && in.substr(h.head_bytes - 4, 4) == "\r\n\r\n",
          "a head ends with its blank line");
    Check(!h.method.empty() && !h.target.empty(), "a ready head has a method and a target");
    Check(h.chunked || h.content_length <= w.head.max_body_bytes, "a body within the limit");
    if (h.expect_continue)
      Check(h.expect_begin < h.expect_end && h.expect_end <= h.head_bytes, "the Expect line is inside the head");
    if (h.chunked) break;  // its end is httplib's to find
    if (in.size() - h.head_bytes < h.content_length) break;
    ParseBody(w, h, std::string(in.substr(h.head_bytes, size_t(h.content_length))));
    in.remove_prefix(h.head_bytes + size_t(h.content_length));
  }
  return 0;
}
