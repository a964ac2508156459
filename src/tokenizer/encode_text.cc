#include "tokenizer/encode_text.h"

namespace rg {

std::vector<int32_t> EncodeText(const Tokenizer& tok, std::string_view text) {
  const int specials[] = {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.unk_id()};
  std::vector<int32_t> out;
  size_t start = 0;
  auto encode_span = [&](size_t end) {
    if (end > start)
      for (int id : tok.Encode(text.substr(start, end - start))) out.push_back(id);
  };
  for (size_t i = 0; i < text.size();) {
    int match = -1;
    size_t len = 0;
    if (text[i] == '<') {
      for (int id : specials) {
        if (id < 0) continue;
        const std::string_view piece = tok.Piece(id);
        if (!piece.empty() && text.compare(i, piece.size(), piece) == 0) {
          match = id;
          len = piece.size();
          break;
        }
      }
    }
    if (match < 0) {
      ++i;
      continue;
    }
    encode_span(i);
    out.push_back(match);
    i += len;
    start = i;
  }
  encode_span(text.size());
  return out;
}

}  // namespace rg
