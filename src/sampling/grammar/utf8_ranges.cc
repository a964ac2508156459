#include "sampling/grammar/utf8_ranges.h"

#include <algorithm>

namespace rg {

namespace {

constexpr uint32_t kSurrogateLo = 0xD800, kSurrogateHi = 0xDFFF;

int Utf8Length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// Encodes cp into b[0 .. Utf8Length(cp)).
void Encode(uint32_t cp, uint8_t* b) {
  switch (Utf8Length(cp)) {
    case 1: b[0] = uint8_t(cp); break;
    case 2:
      b[0] = uint8_t(0xC0 | (cp >> 6));
      b[1] = uint8_t(0x80 | (cp & 0x3F));
      break;
    case 3:
      b[0] = uint8_t(0xE0 | (cp >> 12));
      b[1] = uint8_t(0x80 | ((cp >> 6) & 0x3F));
      b[2] = uint8_t(0x80 | (cp & 0x3F));
      break;
    default:
      b[0] = uint8_t(0xF0 | (cp >> 18));
      b[1] = uint8_t(0x80 | ((cp >> 12) & 0x3F));
      b[2] = uint8_t(0x80 | ((cp >> 6) & 0x3F));
      b[3] = uint8_t(0x80 | (cp & 0x3F));
  }
}

// Splits [lo, hi] until each piece has one encoded length and, at every
// continuation position, either the full 0x80..0xBF range or a range under a
// fixed prefix; then each piece is one byte-range sequence (the classic
// construction of RE2 and Rust's regex-syntax).
void Split(uint32_t lo, uint32_t hi, std::vector<Utf8Sequence>* out) {
  static constexpr uint32_t kLenMax[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t max : kLenMax) {
    if (lo <= max && hi > max) {
      Split(lo, max, out);
      Split(max + 1, hi, out);
      return;
    }
  }
  const int n = Utf8Length(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (uint32_t(1) << (6 * i)) - 1;  // the low i continuation bytes
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        Split(lo, lo | m, out);
        Split((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        Split(lo, (hi & ~m) - 1, out);
        Split(hi & ~m, hi, out);
        return;
      }
    }
  }
  Utf8Sequence s{n, {}, {}};
  Encode(lo, s.lo);
  Encode(hi, s.hi);
  out->push_back(s);
}

}  // namespace

std::vector<CodepointRange> NormalizeRanges(std::vector<CodepointRange> ranges) {
  std::vector<CodepointRange> clipped;
  for (CodepointRange r : ranges) {
    if (r.lo > r.hi || r.lo > kMaxCodepoint) continue;
    r.hi = std::min(r.hi, kMaxCodepoint);
    // Remove the surrogate block.
    if (r.lo < kSurrogateLo && r.hi >= kSurrogateLo) {
      clipped.push_back({r.lo, kSurrogateLo - 1});
      r.lo = kSurrogateLo;
    }
    if (r.lo >= kSurrogateLo && r.lo <= kSurrogateHi) {
      if (r.hi <= kSurrogateHi) continue;
      r.lo = kSurrogateHi + 1;
    }
    clipped.push_back(r);
  }
  std::sort(clipped.begin(), clipped.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.lo < b.lo; });
  std::vector<CodepointRange> merged;
  for (const CodepointRange& r : clipped) {
    // Adjacent across the surrogate gap also merges: nothing lies between.
    const bool touches =
        !merged.empty() && (uint64_t(r.lo) <= uint64_t(merged.back().hi) + 1 ||
                            (merged.back().hi == kSurrogateLo - 1 && r.lo == kSurrogateHi + 1));
    if (touches) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

std::vector<CodepointRange> ComplementRanges(const std::vector<CodepointRange>& ranges) {
  std::vector<CodepointRange> out;
  uint32_t next = 0;  // first code point not yet covered
  for (const CodepointRange& r : ranges) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return NormalizeRanges(std::move(out));
}

std::vector<Utf8Sequence> Utf8Sequences(const std::vector<CodepointRange>& ranges) {
  std::vector<Utf8Sequence> all;
  for (const CodepointRange& r : ranges) {
    // A normalized range may span the surrogate gap (merged above); split it.
    if (r.lo < kSurrogateLo && r.hi > kSurrogateHi) {
      Split(r.lo, kSurrogateLo - 1, &all);
      Split(kSurrogateHi + 1, r.hi, &all);
    } else {
      Split(r.lo, r.hi, &all);
    }
  }
  // 1-byte patterns first, order otherwise kept.
  std::vector<Utf8Sequence> out;
  for (const Utf8Sequence& s : all) {
    if (s.len == 1) out.push_back(s);
  }
  for (const Utf8Sequence& s : all) {
    if (s.len > 1) out.push_back(s);
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  uint8_t b[4];
  Encode(cp, b);
  out->append(reinterpret_cast<const char*>(b), size_t(Utf8Length(cp)));
}

}  // namespace rg
