// The tokenizer's vocabulary as the plain data constrained decoding needs
// (sampling/grammar/token_vocab.h): the bytes each token adds to the text.
#pragma once

#include "sampling/grammar/token_vocab.h"
#include "tokenizer/tokenizer.h"

namespace rg {

// kText: normal and user-defined pieces (their decoded surface: U+2581 ->
// ' ') and byte pieces <0xNN> (the byte NN);
// kEnd: <eos> and <end_of_turn>;
// kSpecial: the other control pieces (<pad>, <bos>), <unk> and
// <start_of_turn>, which a structured answer never contains.
TokenVocab MakeGrammarVocab(const Tokenizer& tok);

}  // namespace rg
