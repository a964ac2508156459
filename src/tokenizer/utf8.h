// UTF-8 validation and sanitizing.
//
// One rule is used everywhere (validation, sanitizing, streaming), and it is
// the rule libsentencepiece applies when it decodes byte-fallback pieces, so
// that StreamDecoder output equals Tokenizer::Decode byte for byte:
//   * a character is valid when it is the shortest encoding of a code point
//     in [0, 0x10FFFF] that is not a surrogate (RFC 3629);
//   * a byte that does not start a valid character (a stray continuation
//     byte, a bad lead byte, an overlong / surrogate / too-large sequence, or
//     a sequence cut short) is replaced by U+FFFD, and scanning resumes at the
//     NEXT byte. So "\xF0\x9F\xAB" (a truncated 4-byte emoji) becomes three
//     U+FFFD, exactly as sentencepiece decodes it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rg {

// U+FFFD REPLACEMENT CHARACTER as UTF-8.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

enum class Utf8Status {
  kValid,       // a complete valid character; *len = its length (1..4)
  kInvalid,     // the first byte can never start a valid character here
  kIncomplete,  // a valid prefix of a character; more bytes are needed
};

// Classifies the character starting at s[0] (s must be non-empty).
// *len is set to the character length for kValid, 1 for kInvalid, and the
// number of bytes available (s.size()) for kIncomplete.
Utf8Status Utf8Next(std::string_view s, size_t* len);

// True if `s` is entirely valid UTF-8. On failure, if bad_offset is not null,
// it receives the byte offset of the first byte that does not start a valid
// character (a truncated sequence at the end is invalid at its lead byte).
bool IsValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

// Returns `s` with every invalid byte replaced by U+FFFD (rule above).
// Valid input is returned unchanged. The result is always valid UTF-8.
std::string SanitizeUtf8(std::string_view s);

// Appends SanitizeUtf8(s) to *out (no temporary string).
void AppendSanitizedUtf8(std::string_view s, std::string* out);

// Incremental sanitizer for a byte stream that arrives in arbitrary chunks:
// Push() emits everything that is decided (complete characters, U+FFFD for
// bytes that can no longer become valid) and keeps at most 3 bytes of an
// incomplete character pending; Finish() resolves the pending tail (each
// pending byte becomes U+FFFD, per the rule above). The concatenation of all
// output equals SanitizeUtf8(concatenation of all input). Never allocates
// beyond the growth of *out.
class Utf8StreamSanitizer {
 public:
  void Push(std::string_view bytes, std::string* out);
  void Finish(std::string* out);
  bool has_pending() const { return pending_len_ > 0; }
  void Reset() { pending_len_ = 0; }

 private:
  // Emits decided characters from pending_; keeps an incomplete tail.
  void Drain(std::string* out, bool final);

  char pending_[8] = {};
  size_t pending_len_ = 0;
};

}  // namespace rg
