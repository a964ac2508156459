// Per-sequence state: everything a sequence carries from one token to the
// next. Its size depends only on the config, never on the sequence length.
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "model/config.h"

namespace rg {

struct RecurrentState {
  std::vector<float> conv;  // [K-1, L] last K-1 conv inputs, slot = pos % (K-1)
  std::vector<float> h;     // [L] RG-LRU hidden state, f32
};

struct AttentionState {
  std::vector<float> k;  // [W, h] keys after RoPE, slot = pos % W
  std::vector<float> v;  // [W, h]
};

class State {
 public:
  explicit State(const Config& c);
  State(State&&) = default;
  State& operator=(State&&) = default;
  State(const State&) = delete;  // copies are explicit: CopyFrom
  State& operator=(const State&) = delete;

  void Reset();  // back to an empty sequence (pos 0)
  void CopyFrom(const State& other);
  size_t bytes() const;

  int64_t pos = 0;  // absolute position of the next token
  std::vector<std::variant<RecurrentState, AttentionState>> layers;
};

}  // namespace rg
