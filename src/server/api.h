// The OpenAI-compatible request layer: parsing and validating JSON bodies of
// /v1/completions and /v1/chat/completions into ParsedRequest, the OpenAI
// error shape, and the small JSON pieces responses are built from. No HTTP
// here (server/http_server.h does that), so it is unit-tested directly.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "sampling/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace rg::server {

using json = nlohmann::ordered_json;

// An error answered to the client: HTTP status + OpenAI error JSON
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
struct ApiError : std::exception {
  ApiError(int status, std::string message, std::string param = {}, std::string type = {},
           std::string code = {});
  const char* what() const noexcept override { return message.c_str(); }
  int status;
  std::string message, param, type, code;
};

// A 400 invalid_request_error naming the field.
[[noreturn]] void BadRequest(const std::string& param, const std::string& message);

json ErrorJson(const ApiError& e);
// Serializes with invalid UTF-8 replaced (never throws on text from the model).
std::string Dump(const json& j);

// Bounds on what one request may ask for (all configurable on `rgemma serve`).
struct ServerLimits {
  size_t max_body_bytes = 8u << 20;      // larger bodies: 413
  int64_t max_prompt_tokens = 16384;     // per prompt, after tokenization: 400
  int64_t max_tokens = 8192;             // largest accepted max_tokens: 400
  int64_t default_max_tokens = 16;       // /v1/completions when max_tokens is absent (OpenAI's default)
  int64_t default_chat_max_tokens = 512; // /v1/chat/completions when absent
  int max_n = 16;                        // choices per prompt
  int max_prompts = 64;                  // prompts in one batched completions request
  int max_logprobs = 20;                 // top alternatives per token
  int max_stop = 32;                     // stop strings
  size_t max_stop_bytes = 512;           // per stop string
  int64_t max_messages = 4096;           // chat messages
  int max_json_depth = 32;
};

// What is being served.
struct ModelInfo {
  std::string id;                 // reported as "model"
  const Config* config = nullptr;
  const Tokenizer* tokenizer = nullptr;  // null: token ids only
  int64_t created = 0;            // unix time, for /v1/models
};

enum class Endpoint { kCompletions, kChat };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;  // as requested (echoed back as ModelInfo::id)
  std::vector<std::vector<int32_t>> prompts;  // token ids of each prompt (completions: 1..max_prompts; chat: 1)
  std::vector<std::string> prompt_texts;      // each prompt's text for echo ("" without a tokenizer)
  int n = 1;
  int64_t max_tokens = 16;
  SamplingParams sampling;  // OpenAI defaults: temperature 1, top_p 1, top_k 0, min_p 0, no penalties
  bool seed_given = false;  // when false, each choice gets a random seed
  std::vector<std::string> stop;  // stop strings (need a tokenizer)
  std::vector<int32_t> stop_ids;  // stop_token_ids + (chat) <end_of_turn>
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // >= 0: top-N alternatives per generated token (chat: top_logprobs)
  bool echo = false;           // completions: return the prompt before the completion
  bool ignore_eos = false;     // extension: do not stop at EOS (chat: nor at <end_of_turn>)
  bool return_tokens = false;  // extension: choices[i].tokens = generated ids

  bool prompt_logprobs() const { return echo && logprobs >= 0; }
  int64_t sequences() const { return int64_t(prompts.size()) * n; }
};

// Parse + validate; throw ApiError (400, naming the field) on anything wrong:
// malformed JSON, a non-object body, wrong types, out-of-range values,
// unknown fields, features that are not supported, text without a tokenizer,
// prompts longer than the limit.
json ParseJsonBody(const std::string& body, const ServerLimits& limits);
ParsedRequest ParseCompletionRequest(const json& body, const ModelInfo& model, const ServerLimits& limits);
ParsedRequest ParseChatRequest(const json& body, const ModelInfo& model, const ServerLimits& limits);

// Text -> ids as Hugging Face's Gemma tokenizer (and so vLLM and friends)
// does it: Tokenizer::Encode, except that the literal text of the special
// pieces "<bos>", "<eos>", "<pad>" and "<unk>" also becomes their ids (plain
// sentencepiece never matches control pieces in text). Used for text prompts
// and /tokenize. BOS is not added here.
std::vector<int32_t> EncodeText(const Tokenizer& tok, std::string_view text);

// The chat template in Hugging Face's Jinja form, as served by
// /tokenizer_info: the Gemma template, with a leading system message folded
// into the first user turn as ApplyChatTemplate does.
extern const char* const kChatTemplateJinja;

// /tokenize and /detokenize (vLLM-compatible; lm-evaluation-harness's
// remote tokenizer uses them). Bodies:
//   /tokenize   {"prompt": "text"} or {"messages": [...]}, "add_special_tokens" (default true:
//               BOS for a prompt), "add_generation_prompt" (messages; default true),
//               "return_token_strs" -> {"count", "max_model_len", "tokens"[, "token_strs"]}
//   /detokenize {"tokens": [ids]} -> {"prompt": "text"}
json Tokenize(const json& body, const ModelInfo& model, const ServerLimits& limits);
json Detokenize(const json& body, const ModelInfo& model);
json TokenizerInfo(const ModelInfo& model);

// How a token is shown in log-probability listings: its text (U+2581 as
// space); control pieces as their piece ("<eos>"), byte pieces as "<0xNN>";
// without a tokenizer "token_id:N".
std::string TokenString(const Tokenizer* tok, int32_t id);
// The bytes a token contributes to the text (chat logprobs "bytes").
std::vector<int> TokenBytes(const Tokenizer* tok, int32_t id);

// A unique response id: prefix + 24 hex digits.
std::string NewResponseId(const char* prefix);
int64_t UnixTime();

}  // namespace rg::server
