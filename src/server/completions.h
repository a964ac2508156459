// POST /v1/completions: parsing a request into ParsedRequest and the JSON of
// its responses (text_completion objects, streamed or whole, with OpenAI's
// legacy logprobs shape: tokens, token_logprobs, top_logprobs, text_offset).
#pragma once

#include <memory>

#include "server/job.h"

namespace rg::server {

// Parse + validate; throws ApiError (400, naming the field) on anything
// wrong: wrong types, out-of-range values, features that are not supported,
// text without a tokenizer, prompts longer than the limit. Unknown fields are
// ignored (listed in ParsedRequest::ignored_fields).
ParsedRequest ParseCompletionRequest(const json& body, const ModelInfo& model, const ServerLimits& limits);

std::unique_ptr<ResponseShape> CompletionShape(const ModelInfo& model);

}  // namespace rg::server
