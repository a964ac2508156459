// Structured output on both generation endpoints: the request fields that
// constrain the text to a grammar (docs/STRUCTURED_OUTPUT.md), compiled once
// per request into ParsedRequest::grammar:
//   response_format {"type": "text"}                      nothing
//                   {"type": "json_object"}               any JSON object
//                   {"type": "json_object", "schema": S}  (llama-server) S
//                   {"type": "json_schema", "json_schema": {"name", "schema": S, "strict", "description"}}
//   json_schema     S (llama-server's field)
//   grammar         GBNF text (llama-server's field)
// At most one of them may constrain. A schema keyword the compiler does not
// support, malformed GBNF, or a model without a tokenizer is a 400 naming
// the field (the compiler's message names the keyword and where it is).
#pragma once

#include "server/request.h"

namespace rg::server {

void ParseStructuredOutput(Fields& f, ParsedRequest& r, const ModelInfo& m);

}  // namespace rg::server
