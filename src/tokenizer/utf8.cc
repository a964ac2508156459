#include "tokenizer/utf8.h"

#include <cstring>

namespace rg {

namespace {

// Allowed range of the second byte for a given lead byte (RFC 3629 table);
// excludes overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4).
inline void SecondByteRange(unsigned char lead, unsigned char* lo, unsigned char* hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (lead == 0xE0) *lo = 0xA0;
  else if (lead == 0xED) *hi = 0x9F;
  else if (lead == 0xF0) *lo = 0x90;
  else if (lead == 0xF4) *hi = 0x8F;
}

}  // namespace

Utf8Status Utf8Next(std::string_view s, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) {
    *len = 1;
    return Utf8Status::kValid;
  }
  size_t need;
  if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) need = 3;
  else if (b0 >= 0xF0 && b0 <= 0xF4) need = 4;
  else {
    *len = 1;  // 0x80..0xC1 (continuation / overlong lead) or 0xF5..0xFF
    return Utf8Status::kInvalid;
  }
  const size_t have = s.size() < need ? s.size() : need;
  for (size_t i = 1; i < have; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    unsigned char lo = 0x80, hi = 0xBF;
    if (i == 1) SecondByteRange(b0, &lo, &hi);
    if (b < lo || b > hi) {
      *len = 1;
      return Utf8Status::kInvalid;
    }
  }
  if (have < need) {
    *len = have;
    return Utf8Status::kIncomplete;
  }
  *len = need;
  return Utf8Status::kValid;
}

bool IsValidUtf8(std::string_view s, size_t* bad_offset) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (Utf8Next(s.substr(i), &len) != Utf8Status::kValid) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

void AppendSanitizedUtf8(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    if (Utf8Next(s.substr(i), &len) == Utf8Status::kValid) {
      out->append(s.data() + i, len);
      i += len;
    } else {
      out->append(kUtf8Replacement);
      i += 1;
    }
  }
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendSanitizedUtf8(s, &out);
  return out;
}

void Utf8StreamSanitizer::Drain(std::string* out, bool final) {
  size_t start = 0;
  while (start < pending_len_) {
    size_t len;
    const Utf8Status st =
        Utf8Next(std::string_view(pending_ + start, pending_len_ - start), &len);
    if (st == Utf8Status::kValid) {
      out->append(pending_ + start, len);
      start += len;
    } else if (st == Utf8Status::kInvalid || final) {
      out->append(kUtf8Replacement);
      start += 1;
    } else {
      break;  // incomplete: wait for more bytes
    }
  }
  if (start > 0) {
    std::memmove(pending_, pending_ + start, pending_len_ - start);
    pending_len_ -= start;
  }
}

void Utf8StreamSanitizer::Push(std::string_view bytes, std::string* out) {
  for (char c : bytes) {
    // Invariant: pending_ holds at most 3 bytes (an incomplete character)
    // before this append, so it never overflows.
    pending_[pending_len_++] = c;
    Drain(out, /*final=*/false);
  }
}

void Utf8StreamSanitizer::Finish(std::string* out) { Drain(out, /*final=*/true); }

}  // namespace rg
