// The model's blueprint: every dimension of a RecurrentGemma (Griffin) network.
// Read from a Hugging Face config.json (io/hf_config.h) or taken from a preset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rg {

enum class LayerKind { kRecurrent, kAttention };

const char* LayerKindName(LayerKind k);

struct Config {
  int64_t vocab_size = 0;            // V
  int64_t width = 0;                 // D, hidden_size
  int64_t mlp_width = 0;             // M = intermediate_size / 2
  int64_t num_heads = 0;             // H (query heads; one shared key/value head)
  int64_t head_dim = 0;              // h = D / H
  int64_t lru_width = 0;             // L (RG-LRU channels)
  int64_t conv_width = 4;            // taps of the causal depthwise conv
  int64_t attention_window = 0;      // W: a query at pos sees keys pos-W .. pos
  float logits_soft_cap = 0.f;       // 0 = none
  float rope_theta = 10000.f;
  float partial_rotary_factor = 0.5f;  // fraction of head_dim that is rotated
  float rms_norm_eps = 1e-6f;
  int bos_id = 2, eos_id = 1, pad_id = 0;
  std::vector<LayerKind> layers;     // one entry per layer

  int64_t num_layers() const { return int64_t(layers.size()); }
  int64_t lru_block_width() const { return lru_width / num_heads; }  // b: RG-LRU gate block
  int64_t rope_dim() const { return int64_t(head_dim * partial_rotary_factor); }  // R

  // Throws rg::Error naming `source` and the offending field when dimensions
  // are missing, non-positive or inconsistent with each other.
  void Validate(const std::string& source) const;
};

// The shapes of the published checkpoints (google/recurrentgemma-2b, -9b).
Config PresetConfig(const std::string& name);  // "2b" | "9b"; throws on others

}  // namespace rg
