// What the tensor table says of each checkpoint tensor: its HF name, the
// shape the config implies, and its role (how the engine stores it). The
// table itself is model/tensor_map.cc; ForEachTensor walks it without weights.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"

namespace rg {

enum class TensorRole {
  kMatrix,     // a linear layer's weight [out, in]: kept in checkpoint dtype / quantized
  kEmbedding,  // model.embed_tokens.weight / lm_head.weight [V, D]: also quantizable
  kVector,     // biases and RG-LRU parameters: converted to f32 at load
  kNormScale,  // RMSNorm scale w: f32, stored as (1 + w) as the reference applies it
  kGateBlock,  // RG-LRU block-diagonal gate [H, b_in, b_out]: f32, kept in that layout (ops/block_diag.h)
  kConv,       // conv_1d.weight [L, 1, K]: f32, re-laid out tap-major at load
};

struct TensorSpec {
  std::string name;            // HF name
  std::vector<int64_t> shape;  // what the config implies
  TensorRole role;
  int layer;                   // -1 for globals
  bool required;               // lm_head.weight is optional (tied when absent)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Calls fn for every tensor of a model with config c, in a fixed order.
void ForEachTensor(const Config& c, const std::function<void(const TensorSpec&)>& fn);

// HF names, spelled once.
namespace names {
inline const char kEmbed[] = "model.embed_tokens.weight";
inline const char kLmHead[] = "lm_head.weight";
inline const char kFinalNorm[] = "model.final_norm.weight";
std::string Layer(int i, const char* suffix);  // "model.layers.{i}.{suffix}"
}  // namespace names

}  // namespace rg
