// Reading the fields of a JSON object, shared by every reader of JSON input
// (config.json in model/hf_config.cc, request bodies in server/openai_json.cc):
// what counts as absent, and what counts as an integer. Each reader words
// its own errors.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

namespace rg {

// obj[key], or null when the key is absent or its value is JSON null. Json
// is any nlohmann::basic_json (json, ordered_json).
template <class Json>
const Json* FindField(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// v as an integer: a JSON integer that fits int64, or a number with an
// integral value (2048.0 is 2048; 2048.5 and 1e300 are not integers).
template <class Json>
std::optional<int64_t> IntegerValue(const Json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.template get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) return std::nullopt;
    return int64_t(u);
  }
  if (v.is_number_integer()) return v.template get<int64_t>();
  if (v.is_number_float()) {
    const double x = v.template get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return int64_t(x);
  }
  return std::nullopt;
}

}  // namespace rg
