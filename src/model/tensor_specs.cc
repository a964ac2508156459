#include "model/tensor_specs.h"

#include "model/weights.h"

namespace rg {

std::string names::Layer(int i, const char* suffix) {
  return "model.layers." + std::to_string(i) + "." + suffix;
}

void ForEachTensor(const Config& c, const std::function<void(const TensorSpec&)>& fn) {
  ForEachBoundTensor(c, nullptr, [&](const TensorSpec& spec, TensorSlot) { fn(spec); });
}

}  // namespace rg
