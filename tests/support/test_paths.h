// What the CLI tests run and read: the rgemma binary, the tiny reference
// fixture, the Gemma tokenizer (from the test targets' compile definitions).
#pragma once

#include <string>

namespace rg::test {

inline const std::string kBin = RG_BINARY;
inline const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";
inline const std::string kTokenizer = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";

}  // namespace rg::test
