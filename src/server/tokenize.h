// /tokenize, /detokenize and /tokenizer_info (vLLM-compatible;
// lm-evaluation-harness's "remote" tokenizer backend uses them). Bodies:
//   /tokenize   {"prompt": "text"} or {"messages": [...]}, "add_special_tokens" (default true:
//               BOS for a prompt), "add_generation_prompt" (messages; default true),
//               "return_token_strs" -> {"count", "max_model_len", "tokens"[, "token_strs"]}
//   /detokenize {"tokens": [ids]} -> {"prompt": "text"}
#pragma once

#include "server/request.h"

namespace rg::server {

json Tokenize(const json& body, const ModelInfo& model, const ServerLimits& limits);
json Detokenize(const json& body, const ModelInfo& model);
json TokenizerInfo(const ModelInfo& model);

// The chat template in Hugging Face's Jinja form, as served by
// /tokenizer_info: the Gemma template, with system messages joined and folded
// into the next user turn as ApplyChatTemplate does.
extern const char* const kChatTemplateJinja;

}  // namespace rg::server
