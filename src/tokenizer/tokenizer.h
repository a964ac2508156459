// Gemma tokenizer: a thin wrapper over libsentencepiece (the same library
// Google's own stacks use with tokenizer.model), plus per-id tables for fast
// streaming decode.
//
// Encoding semantics are SentencePiece's (see models/tokenizer/README.md):
//   * ' ' becomes U+2581, no normalization, no dummy prefix;
//   * USER_DEFINED pieces (<start_of_turn>, <end_of_turn>, <unusedN>, HTML
//     tags, newline / space / tab runs, ...) ARE matched when they appear
//     literally in the text;
//   * CONTROL pieces (<pad> <eos> <bos>) and <unk> are never matched in text:
//     "<bos>" encodes as '<' 'bos' '>'. Add BOS yourself (bos_id()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace rg {

// A SentencePiece model is a few MB (Gemma's: 4 MB); far larger is not one.
constexpr size_t kMaxTokenizerBytes = 256u << 20;

class Tokenizer {
 public:
  // Loads a SentencePiece tokenizer.model. Throws rg::Error (one line, naming
  // the path) if the file is missing / unreadable / not a SentencePiece
  // model, or lacks the Gemma chat pieces <start_of_turn> / <end_of_turn>.
  static std::unique_ptr<Tokenizer> Load(const std::string& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`, WITHOUT BOS/EOS. Throws rg::Error naming the byte
  // offset if `text` is not valid UTF-8. Thread-safe (const).
  std::vector<int> Encode(std::string_view text) const;

  // Full text of `ids` (sentencepiece semantics: U+2581 -> ' ', byte pieces
  // -> raw bytes with invalid UTF-8 replaced by U+FFFD, control pieces -> "").
  // Throws rg::Error if an id is outside [0, vocab_size()).
  std::string Decode(const std::vector<int>& ids) const;

  // The raw piece string of `id` (e.g. "▁the", "<0x0A>", "<bos>").
  // Throws rg::Error if out of range. The view lives as long as *this.
  std::string_view Piece(int id) const;

  bool IsControl(int id) const;  // <pad> <eos> <bos>
  bool IsByte(int id) const;     // <0x00>..<0xFF>
  bool IsUnknown(int id) const;  // <unk>

  // For byte pieces, the byte value 0..255; -1 for any other piece.
  int ByteValue(int id) const;

  // Text a non-byte piece contributes to Decode(): the piece with U+2581
  // replaced by ' ' (normal and user-defined pieces), "" for control pieces,
  // the unknown surface for <unk>, "" for byte pieces (see ByteValue).
  std::string_view Surface(int id) const;

  int vocab_size() const { return vocab_size_; }
  const std::string& path() const { return path_; }  // the file it was loaded from
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  int pad_id() const { return pad_id_; }
  int unk_id() const { return unk_id_; }
  int start_of_turn_id() const { return start_of_turn_id_; }
  int end_of_turn_id() const { return end_of_turn_id_; }

 private:
  enum Kind : uint8_t { kNormal, kControl, kByte, kUnknown };

  Tokenizer();
  void CheckId(int id, const char* what) const;

  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int vocab_size_ = 0;
  int bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  int start_of_turn_id_ = -1, end_of_turn_id_ = -1;
  std::vector<uint8_t> kind_;          // [vocab]
  std::vector<int16_t> byte_value_;    // [vocab], -1 if not a byte piece
  std::string surface_arena_;          // all surfaces, concatenated
  std::vector<uint32_t> surface_off_;  // [vocab + 1] offsets into the arena
};

}  // namespace rg
