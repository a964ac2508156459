#include "sampling/grammar/int_range.h"

#include <algorithm>
#include <string>
#include <vector>

namespace rg {

namespace {

constexpr int64_t kMaxMagnitude = 9999999999999999;  // 10^16 - 1

std::string Digit(char d) { return std::string("\"") + d + "\""; }

std::string Digits(char lo, char hi) {
  if (lo == hi) return Digit(lo);
  return std::string("[") + lo + "-" + hi + "]";
}

// Any n digits.
std::string AnyDigits(size_t n) {
  if (n == 0) return "";
  if (n == 1) return "[0-9]";
  return "[0-9]{" + std::to_string(n) + "}";
}

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string Parenthesized(const std::vector<std::string>& alts) {
  std::string out = "(";
  out += Join(alts, " | ");
  out += ")";
  return out;
}

// Digit strings of equal length n with lo <= s <= hi (lexicographically =
// numerically): split on the first digit, as the classic regex construction.
std::string SameLength(const std::string& lo, const std::string& hi) {
  const size_t n = lo.size();
  if (n == 0) return "";
  if (lo == hi) return "\"" + lo + "\"";
  if (lo[0] == hi[0]) return Join({Digit(lo[0]), SameLength(lo.substr(1), hi.substr(1))}, " ");
  const std::string lo_tail = lo.substr(1), hi_tail = hi.substr(1);
  const bool lo_full = lo_tail == std::string(n - 1, '0');
  const bool hi_full = hi_tail == std::string(n - 1, '9');
  std::vector<std::string> alts;
  char first = lo[0], last = hi[0];
  if (!lo_full) {
    alts.push_back(Join({Digit(lo[0]), SameLength(lo_tail, std::string(n - 1, '9'))}, " "));
    ++first;
  }
  std::string tail_alt;
  if (!hi_full) {
    tail_alt = Join({Digit(hi[0]), SameLength(std::string(n - 1, '0'), hi_tail)}, " ");
    --last;
  }
  if (first <= last) alts.push_back(Join({Digits(first, last), AnyDigits(n - 1)}, " "));
  if (!tail_alt.empty()) alts.push_back(tail_alt);
  return alts.size() == 1 ? alts[0] : Parenthesized(alts);
}

// Magnitudes a <= m <= b (0 <= a <= b <= kMaxMagnitude), as alternatives.
void NonNegative(int64_t a, int64_t b, std::vector<std::string>* alts, const std::string& sign) {
  const std::string sa = std::to_string(a), sb = std::to_string(b);
  for (size_t len = sa.size(); len <= sb.size(); ++len) {
    const std::string lo = len == sa.size() ? sa : std::string(1, '1').append(len - 1, '0');
    const std::string hi = len == sb.size() ? sb : std::string(len, '9');
    alts->push_back(Join({sign, SameLength(lo, hi)}, " "));
  }
}

}  // namespace

std::string IntRangeGbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  const int64_t a = std::max<int64_t>(lo.value_or(-kMaxMagnitude), -kMaxMagnitude);
  const int64_t b = std::min<int64_t>(hi.value_or(kMaxMagnitude), kMaxMagnitude);
  if (a > b) return "";
  std::vector<std::string> alts;
  if (a < 0) NonNegative(std::max<int64_t>(1, -std::min<int64_t>(b, -1)), -a, &alts, "\"-\"");
  if (b >= 0) NonNegative(std::max<int64_t>(a, 0), b, &alts, "");
  return Parenthesized(alts);
}

}  // namespace rg
