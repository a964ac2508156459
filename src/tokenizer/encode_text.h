// How rgemma turns user text into ids, everywhere (CLI prompts, score,
// perplexity, the server, the Python and C APIs), so "<bos>" typed as text
// means the same in all of them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rg {

// Text -> ids as Hugging Face's Gemma tokenizer (and so vLLM and friends)
// does it: Tokenizer::Encode, except that the literal text of the special
// pieces "<bos>", "<eos>", "<pad>" and "<unk>" also becomes their ids (plain
// sentencepiece never matches control pieces in text). BOS is not added.
// Throws rg::Error naming the byte offset for invalid UTF-8.
std::vector<int32_t> EncodeText(const Tokenizer& tok, std::string_view text);

}  // namespace rg
