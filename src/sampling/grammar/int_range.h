// GBNF for the decimal integers in a range, as JSON writes them (no leading
// zeros, "-" for negatives, never "-0"): the `minimum` / `maximum` /
// `exclusiveMinimum` / `exclusiveMaximum` keywords of an integer schema.
// Magnitudes have at most kIntRangeMaxDigits digits (like the unbounded
// integer rule), so a bound beyond that only narrows what is generated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rg {

inline constexpr int kIntRangeMaxDigits = 16;

// A GBNF expression (parenthesized alternatives) matching exactly the
// integers v with lo <= v <= hi (a missing bound is unbounded), limited to
// |v| < 10^kIntRangeMaxDigits. Returns "" if no such integer exists.
std::string IntRangeGbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

}  // namespace rg
