// Finding the files that belong with a model directory.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace rg::cli {

// --tokenizer FILE if given, else DIR/tokenizer.model; nullptr when neither
// exists and `required` is false (models without a tokenizer take ids only).
std::unique_ptr<Tokenizer> LoadTokenizerFor(const std::string& model_dir, const std::string& flag,
                                            bool required);

// Reads a whole text file (for --prompt-file), refusing more than max_bytes.
std::string ReadTextFile(const std::string& path, size_t max_bytes, const char* what);

}  // namespace rg::cli
