// A set of byte values 0..255 as a 256-bit bitmap: the terminal of the
// byte-level grammar (grammar.h). Code-point character classes are lowered to
// sequences of these by utf8_ranges.h.
#pragma once

#include <cstdint>

namespace rg {

struct ByteSet {
  uint64_t w[4] = {0, 0, 0, 0};  // bit b of w[b / 64] set <=> byte b in the set

  bool Test(uint8_t b) const { return (w[b >> 6] >> (b & 63)) & 1; }
  void Add(uint8_t b) { w[b >> 6] |= uint64_t(1) << (b & 63); }
  void AddRange(uint8_t lo, uint8_t hi) {  // inclusive; lo <= hi
    for (int b = lo; b <= hi; ++b) Add(uint8_t(b));
  }
  bool Empty() const { return (w[0] | w[1] | w[2] | w[3]) == 0; }
  bool operator==(const ByteSet& o) const {
    return w[0] == o.w[0] && w[1] == o.w[1] && w[2] == o.w[2] && w[3] == o.w[3];
  }
  bool operator<(const ByteSet& o) const {
    for (int i = 0; i < 4; ++i) {
      if (w[i] != o.w[i]) return w[i] < o.w[i];
    }
    return false;
  }
};

}  // namespace rg
