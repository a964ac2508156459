#include "tokenizer/stream_decoder.h"

namespace rg {

std::string StreamDecoder::Push(int id) {
  std::string out;
  const int byte = tok_->ByteValue(id);  // range-checks id
  if (byte >= 0) {
    const char c = static_cast<char>(byte);
    utf8_.Push(std::string_view(&c, 1), &out);
    return out;
  }
  // Any non-byte piece ends the current byte run.
  utf8_.Finish(&out);
  out.append(tok_->Surface(id));
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  utf8_.Finish(&out);
  return out;
}

}  // namespace rg
