#include "model/config.h"

#include <cmath>

#include "core/error.h"

namespace rg {

const char* LayerKindName(LayerKind k) {
  return k == LayerKind::kRecurrent ? "recurrent" : "attention";
}

void Config::Validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* field) {
    RG_CHECK(v > 0, source, ": field '", field, "' must be a positive integer, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(width, "hidden_size");
  positive(mlp_width, "intermediate_size / 2");
  positive(num_heads, "num_attention_heads");
  positive(head_dim, "head_dim");
  positive(lru_width, "lru_width");
  positive(conv_width, "conv1d_width");
  positive(attention_window, "attention_window_size");
  positive(num_layers(), "num_hidden_layers");
  // Sanity bounds: far above every published model, low enough that a typo
  // cannot make us allocate terabytes.
  RG_CHECK(vocab_size <= (1 << 24) && width <= 65536 && mlp_width <= (1 << 20) &&
               lru_width <= 65536 && num_layers() <= 1024 && attention_window <= (1 << 24) &&
               conv_width <= 64 && num_heads <= 4096,
           source, ": dimensions are implausibly large (hidden_size ", width, ", vocab_size ",
           vocab_size, ", layers ", num_layers(), ", window ", attention_window, ")");
  RG_CHECK(num_heads * head_dim == width, source,
           ": inconsistent head counts: num_attention_heads (", num_heads, ") x head_dim (",
           head_dim, ") must equal hidden_size (", width, ")");
  RG_CHECK(lru_width % num_heads == 0, source, ": lru_width (", lru_width,
           ") must be divisible by num_attention_heads (", num_heads,
           ") for the block-diagonal RG-LRU gates");
  RG_CHECK(rope_dim() % 2 == 0 && rope_dim() <= head_dim && rope_dim() >= 0, source,
           ": partial_rotary_factor ", partial_rotary_factor, " x head_dim ", head_dim,
           " must give an even number of rotated dims");
  RG_CHECK(std::isfinite(logits_soft_cap) && logits_soft_cap >= 0.f, source,
           ": logits_soft_cap must be >= 0 (0 = none), got ", logits_soft_cap);
  RG_CHECK(std::isfinite(rope_theta) && rope_theta > 1.f, source,
           ": rope_theta must be > 1, got ", rope_theta);
  RG_CHECK(std::isfinite(rms_norm_eps) && rms_norm_eps > 0.f && rms_norm_eps < 1.f, source,
           ": rms_norm_eps must be in (0, 1), got ", rms_norm_eps);
  for (int id : {bos_id, eos_id})
    RG_CHECK(id >= 0 && id < vocab_size, source, ": special token id ", id,
             " is outside the vocabulary [0, ", vocab_size, ")");
}

Config PresetConfig(const std::string& name) {
  Config c;
  auto cycle = [](int n) {
    std::vector<LayerKind> v;
    for (int i = 0; i < n; ++i) v.push_back(i % 3 == 2 ? LayerKind::kAttention : LayerKind::kRecurrent);
    return v;
  };
  c.vocab_size = 256000;
  c.attention_window = 2048;
  c.logits_soft_cap = 30.f;
  c.conv_width = 4;
  if (name == "2b") {
    c.width = 2560;
    c.mlp_width = 7680;
    c.num_heads = 10;
    c.head_dim = 256;
    c.lru_width = 2560;
    c.layers = cycle(26);
  } else if (name == "9b") {
    c.width = 4096;
    c.mlp_width = 12288;
    c.num_heads = 16;
    c.head_dim = 256;
    c.lru_width = 4096;
    c.layers = cycle(38);
  } else {
    Fail("unknown preset '", name, "' (expected 2b or 9b)");
  }
  return c;
}

}  // namespace rg
