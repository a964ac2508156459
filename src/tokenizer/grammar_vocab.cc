#include "tokenizer/grammar_vocab.h"

namespace rg {

TokenVocab MakeGrammarVocab(const Tokenizer& tok) {
  const int n = tok.vocab_size();
  TokenVocab v;
  v.bytes.resize(size_t(n));
  v.kinds.assign(size_t(n), TokenKind::kText);
  for (int id = 0; id < n; ++id) {
    if (id == tok.eos_id() || id == tok.end_of_turn_id()) {
      v.kinds[id] = TokenKind::kEnd;
    } else if (tok.IsControl(id) || tok.IsUnknown(id) || id == tok.start_of_turn_id()) {
      v.kinds[id] = TokenKind::kSpecial;
    } else if (tok.IsByte(id)) {
      v.bytes[id] = std::string(1, char(tok.ByteValue(id)));
    } else {
      v.bytes[id] = std::string(tok.Surface(id));
    }
  }
  return v;
}

}  // namespace rg
