// POST /v1/chat/completions: parsing a request (messages rendered with the
// Gemma chat template) into ParsedRequest and the JSON of its responses
// (chat.completion objects, streamed as chat.completion.chunk).
#pragma once

#include <memory>

#include "server/job.h"

namespace rg::server {

// Parse + validate, as ParseCompletionRequest. Also fills the cache hints
// (the prompt lengths at turn boundaries) and chat_history.
ParsedRequest ParseChatRequest(const json& body, const ModelInfo& model, const ServerLimits& limits);

std::unique_ptr<ResponseShape> ChatShape(const ModelInfo& model);

}  // namespace rg::server
