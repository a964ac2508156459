// The vocabulary as plain data, built by the caller from its tokenizer (the
// sampling layer never sees the tokenizer): for each token id, the exact bytes
// it adds to the output text, and whether it is ordinary text, a special
// token that constrained decoding never allows, or an end token (EOS,
// <end_of_turn>) allowed exactly when the output is a complete match.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rg {

enum class TokenKind : uint8_t {
  kText,     // contributes bytes[id]; allowed when the grammar accepts them
  kSpecial,  // control / unknown / anything not to emit under a grammar: never allowed
  kEnd,      // ends generation: allowed iff the output so far is complete
};

struct TokenVocab {
  std::vector<std::string> bytes;  // [vocab] output bytes of each kText token (a
                                   // byte-fallback token <0xNN> is the single byte NN)
  std::vector<TokenKind> kinds;    // [vocab]
};

}  // namespace rg
