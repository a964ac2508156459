// Reading the reference fixtures (tests/data/fixtures/<name>/): a model
// directory plus expected.safetensors holding tokens.<i>, logits.<i>,
// decode_logits.<i>, gen_prompt.<i>, gen_tokens.<i> and act.<i>.* for each case.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace rg::test {

// Every fixture directory under tests/data/fixtures (new ones can be dropped in).
std::vector<std::string> FixtureDirs();

struct FixtureCase {
  std::string index;
  std::vector<int32_t> tokens;
  const TensorView* logits = nullptr;         // [T, V]
  const TensorView* decode_logits = nullptr;  // [T, V]
  std::vector<int32_t> gen_prompt, gen_tokens;
};

class Fixture {
 public:
  explicit Fixture(const std::string& dir);
  std::string dir, name;
  std::unique_ptr<SafetensorsFile> expected;
  std::vector<FixtureCase> cases;
  const TensorView* Find(const std::string& n) const { return expected->Find(n); }
};

std::vector<int32_t> ReadI32(const TensorView& tv);

// max |a - b| over n floats.
double MaxAbsDiff(const float* a, const float* b, size_t n);

}  // namespace rg::test
