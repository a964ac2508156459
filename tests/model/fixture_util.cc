#include "fixture_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rg::test {

std::vector<std::string> FixtureDirs() {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(std::string(RG_TEST_DATA) + "/fixtures"))
    if (e.is_directory() && std::filesystem::exists(e.path() / "expected.safetensors"))
      dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<int32_t> ReadI32(const TensorView& tv) {
  std::vector<int32_t> v(static_cast<size_t>(tv.numel()));
  std::memcpy(v.data(), tv.data, v.size() * 4);
  return v;
}

Fixture::Fixture(const std::string& d) : dir(d), name(std::filesystem::path(d).filename().string()) {
  expected = SafetensorsFile::Open(dir + "/expected.safetensors");
  for (const TensorView& tv : expected->tensors()) {
    if (tv.name.rfind("tokens.", 0) != 0) continue;
    FixtureCase c;
    c.index = tv.name.substr(7);
    c.tokens = ReadI32(tv);
    c.logits = Find("logits." + c.index);
    c.decode_logits = Find("decode_logits." + c.index);
    if (auto* p = Find("gen_prompt." + c.index)) c.gen_prompt = ReadI32(*p);
    if (auto* g = Find("gen_tokens." + c.index)) c.gen_tokens = ReadI32(*g);
    cases.push_back(std::move(c));
  }
}

double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

}  // namespace rg::test
