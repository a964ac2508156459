// Incremental detokenizer for printing tokens as they are generated.
//
// One StreamDecoder per generation. Push() takes one token id and returns the
// bytes that are now safe to print; Flush() at the end returns what is still
// pending. Guarantees:
//   * every returned chunk is valid UTF-8 on its own (never a split character);
//   * the concatenation of all Push() results and Flush() equals
//     Tokenizer::Decode(all ids) byte for byte — for ANY id sequence, valid or
//     not, because invalid bytes are replaced by U+FFFD with the same per-byte
//     rule sentencepiece uses (see utf8.h).
// Rules: normal / user-defined pieces print their text with U+2581 -> ' ';
// byte-fallback pieces <0xNN> are buffered until they complete a UTF-8
// character; control pieces print nothing. As in sentencepiece, a run of byte
// pieces ends at the next non-byte piece (control pieces included): an
// incomplete character still pending then is emitted as U+FFFD per byte.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rg {

class StreamDecoder {
 public:
  // `tok` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}

  // Returns the bytes that became printable with `id` (possibly empty).
  // Throws rg::Error if id is out of range.
  std::string Push(int id);

  // Resolves the pending tail (an incomplete character -> U+FFFD per byte)
  // and returns it. The decoder can be reused afterwards.
  std::string Flush();

  // Drops pending bytes (start a new generation).
  void Reset() { utf8_.Reset(); }

  bool has_pending() const { return utf8_.has_pending(); }

 private:
  const Tokenizer* tok_;
  Utf8StreamSanitizer utf8_;
};

}  // namespace rg
