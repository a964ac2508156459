// libFuzzer target: config.json parsing must reject bad input with rg::Error
// and never crash, hang or throw anything else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rg::ParseHFConfig(std::string(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
  } catch (const rg::Error&) {
  }
  return 0;
}
