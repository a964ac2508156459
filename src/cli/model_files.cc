#include "cli/model_files.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace rg::cli {

std::unique_ptr<Tokenizer> LoadTokenizerFor(const std::string& model_dir, const std::string& flag,
                                            bool required) {
  if (!flag.empty()) return Tokenizer::Load(flag);
  const std::string path = model_dir + "/tokenizer.model";
  if (std::filesystem::exists(path)) return Tokenizer::Load(path);
  RG_CHECK(!required, model_dir, ": no tokenizer.model in the model directory (text needs one; pass "
           "--tokenizer FILE, or give token ids with --prompt-ids)");
  return nullptr;
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
