// Finding the files that belong with a model directory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace rg::cli {

// --tokenizer FILE if given, else DIR/tokenizer.model; nullptr for
// `--tokenizer none` and when neither exists (models without a tokenizer
// take ids only). `required`: no tokenizer is an error, which ends with
// `alternative` (e.g. ", or give token ids with --prompt-ids").
std::unique_ptr<Tokenizer> LoadTokenizerFor(const std::string& model_dir, const std::string& flag, bool required,
                                            const std::string& alternative = "");

// Decides once, at load, what happens to ids of the model that the tokenizer
// has no piece for (a model whose vocabulary is padded beyond the
// tokenizer's): they are never sampled and render as empty text (a prompt
// may still hold them). Returns how many ids may be sampled (the whole
// vocabulary without a tokenizer); a note on stderr unless quiet. A
// tokenizer with more pieces than the model has ids is refused.
int64_t SampleableVocab(const Config& c, const Tokenizer* tok, bool quiet);

// Reads a whole text file (for --prompt-file), refusing more than max_bytes.
std::string ReadTextFile(const std::string& path, size_t max_bytes, const char* what);

}  // namespace rg::cli
