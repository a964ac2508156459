// A generation request of the OpenAI API (/v1/completions or
// /v1/chat/completions) after parsing and validation, the limits it is
// checked against, and the parsing shared by both endpoints. Each endpoint's
// own fields are parsed in its file (completions.h, chat_completions.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sampling/grammar/grammar.h"
#include "sampling/grammar/token_trie.h"
#include "sampling/logit_bias.h"
#include "sampling/sampling_params.h"
#include "server/openai_json.h"

namespace rg::server {

// Bounds on what one request may ask for (all configurable on `rgemma serve`).
struct ServerLimits {
  size_t max_body_bytes = 8u << 20;      // larger bodies: 413
  int64_t max_prompt_tokens = 16384;     // per prompt, after tokenization: 400
  // Text per prompt, checked before tokenizing (which costs time and memory
  // in proportion): 400. The default allows 16 bytes per token of the limit
  // above; a token of text is rarely more than 4.
  size_t max_prompt_bytes = 16 * 16384;
  int64_t max_tokens = 1 << 20;          // largest accepted max_tokens (--max-tokens-limit): 400
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
  // The tokenizer's byte trie for structured output, built once at load
  // (null without a tokenizer: response_format / grammar get 400).
  std::shared_ptr<const TokenTrie> grammar_trie;
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
  bool cache_prompt = true;    // llama-server's field: false skips the state cache
  std::vector<LogitBias> logit_bias;       // OpenAI's logit_bias
  std::shared_ptr<const Grammar> grammar;  // structured output (structured_output.h); null: free text
  // Fields this server does not know (e.g. "messages[0].foo"): ignored, and
  // named in the request's log line.
  std::vector<std::string> ignored_fields;
  std::vector<int64_t> cache_hints;  // chat: prompt lengths at turn boundaries (store probes)
  // chat: the conversation's ids without the generation prompt; the next
  // request starts with these + the reply's turn.
  std::vector<int32_t> chat_history;

  bool prompt_logprobs() const { return echo && logprobs >= 0; }
  int64_t sequences() const { return int64_t(prompts.size()) * n; }
};

// Parses a body; 400 for malformed JSON (NUL bytes and trailing bytes
// included), a number out of double's range (naming its field), a
// non-object, nesting deeper than the limit.
json ParseJsonBody(const std::string& body, const ServerLimits& limits);

// Fields both endpoints take: model, n, sampling, seed, logit_bias, stop,
// stop_token_ids, stream, stream_options, structured output, extensions,
// OpenAI fields that have no effect here.
void ParseCommonFields(Fields& f, ParsedRequest& r, const ModelInfo& m, const ServerLimits& lim);

// max_tokens or one of its aliases (`aliases`, e.g. max_completion_tokens;
// llama-server's n_predict, where -1 means "up to the server's limit"):
// at least `min`, at most the server's --max-tokens-limit; `def` when absent.
int64_t ParseMaxTokens(Fields& f, const std::vector<std::string>& aliases, int64_t min, int64_t def,
                       const ServerLimits& lim);

// 400 naming `param` if the prompt is empty or over the token limit.
void CheckPromptLength(size_t n, const std::string& param, const ServerLimits& lim, const std::string& what);
// 400 naming `param` if a prompt's text is over the byte limit: called
// before tokenizing it.
void CheckPromptBytes(size_t bytes, const std::string& param, const ServerLimits& lim, const std::string& what);
// The tokenizer, or 400 naming `param` saying `what` needs one.
const Tokenizer& NeedTokenizer(const ModelInfo& m, const std::string& param, const std::string& what);

}  // namespace rg::server
