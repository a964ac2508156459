#include "cli/model_files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace rg::cli {

std::unique_ptr<Tokenizer> LoadTokenizerFor(const std::string& model_dir, const std::string& flag, bool required,
                                            const std::string& alternative) {
  if (flag == "none") {
    RG_CHECK(!required, "--tokenizer none: this needs a tokenizer for text", alternative);
    return nullptr;
  }
  if (!flag.empty()) return Tokenizer::Load(flag);
  const std::string path = model_dir + "/tokenizer.model";
  if (std::filesystem::exists(path)) return Tokenizer::Load(path);
  RG_CHECK(!required, model_dir, ": no tokenizer.model in the model directory (text needs one: pass --tokenizer FILE",
           alternative, ")");
  return nullptr;
}

int64_t SampleableVocab(const Config& c, const Tokenizer* tok, bool quiet) {
  if (!tok) return c.vocab_size;
  RG_CHECK(tok->vocab_size() <= c.vocab_size, tok->path(), ": the tokenizer has ", tok->vocab_size(),
           " pieces but the model only ", c.vocab_size, " ids (vocab_size in config.json): not this model's tokenizer");
  if (tok->vocab_size() < c.vocab_size && !quiet)
    std::fprintf(stderr, "note: the model has %lld ids but the tokenizer %d pieces: ids %d..%lld are never sampled "
                 "(they have no text)\n", (long long)c.vocab_size, tok->vocab_size(), tok->vocab_size(),
                 (long long)c.vocab_size - 1);
  return tok->vocab_size();
}

std::string ReadTextFile(const std::string& path, size_t max_bytes, const char* what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  RG_CHECK(!ec, path, ": cannot read ", what, ": ", ec.message());
  RG_CHECK(size <= max_bytes, path, ": ", what, " is ", size, " bytes, more than the limit of ", max_bytes,
           " (raise it with --max-prompt-bytes)");
  std::ifstream in(path, std::ios::binary);
  RG_CHECK(in, path, ": cannot open ", what);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace rg::cli
