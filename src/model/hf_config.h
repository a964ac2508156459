// Reads a Hugging Face RecurrentGemmaConfig (config.json) into rg::Config,
// accepting every spelling found on the Hub and in HF's config class.
#pragma once

#include <cstddef>
#include <string>

#include "model/config.h"

namespace rg {

// config.json is a few KB; anything this large is not one.
constexpr size_t kMaxConfigBytes = 16u << 20;

// Parses and validates. `source` names the file in error messages.
Config ParseHFConfig(const std::string& json_text, const std::string& source);
Config LoadHFConfig(const std::string& path);

// The config.json the Hub ships for a model of these dimensions.
std::string HFConfigJson(const Config& c, const std::string& torch_dtype);

}  // namespace rg
