// Code-point classes and their UTF-8 byte form. The grammar matcher works on
// bytes (so a token may end in the middle of a character, and byte-fallback
// tokens need no special case); a code-point class such as [^"\\] or [α-ω] is
// lowered to alternatives of byte-range sequences, e.g.
//   [\x80-\x{7FF}] -> [\xC2-\xDF] [\x80-\xBF]
// Only valid UTF-8 is ever described: surrogates (U+D800..U+DFFF) and code
// points above U+10FFFF are excluded, and encodings are the shortest ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rg {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

struct CodepointRange {
  uint32_t lo, hi;  // inclusive
};

// Sorted, overlapping / adjacent ranges merged, clipped to [0, U+10FFFF],
// surrogates removed. Every other function here expects this form.
std::vector<CodepointRange> NormalizeRanges(std::vector<CodepointRange> ranges);

// All valid code points not in `ranges` (normalized in, normalized out).
std::vector<CodepointRange> ComplementRanges(const std::vector<CodepointRange>& ranges);

// One UTF-8 byte pattern: byte k lies in [lo[k], hi[k]] for k < len.
struct Utf8Sequence {
  int len;  // 1..4
  uint8_t lo[4];
  uint8_t hi[4];
};

// Byte patterns whose union is exactly the UTF-8 encodings of `ranges`
// (normalized). Patterns are disjoint; 1-byte ones come first.
std::vector<Utf8Sequence> Utf8Sequences(const std::vector<CodepointRange>& ranges);

// Appends the UTF-8 encoding of cp (cp <= U+10FFFF, not a surrogate).
void AppendUtf8(uint32_t cp, std::string* out);

}  // namespace rg
