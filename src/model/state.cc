#include "model/state.h"

#include <algorithm>

#include "core/error.h"

namespace rg {

State::State(const Config& c) {
  for (LayerKind kind : c.layers) {
    if (kind == LayerKind::kRecurrent) {
      RecurrentState r;
      r.conv.assign(size_t((c.conv_width - 1) * c.lru_width), 0.f);
      r.h.assign(size_t(c.lru_width), 0.f);
      layers.emplace_back(std::move(r));
    } else {
      AttentionState a;
      a.k.assign(size_t(c.attention_window * c.head_dim), 0.f);
      a.v.assign(size_t(c.attention_window * c.head_dim), 0.f);
      layers.emplace_back(std::move(a));
    }
  }
}

void State::Reset() {
  pos = 0;
  // Not strictly needed (pos 0 resets the RG-LRU and masks the rings), but a
  // reset state is then bitwise equal to a fresh one.
  for (auto& l : layers) {
    if (auto* r = std::get_if<RecurrentState>(&l)) {
      std::fill(r->conv.begin(), r->conv.end(), 0.f);
      std::fill(r->h.begin(), r->h.end(), 0.f);
    } else if (auto* a = std::get_if<AttentionState>(&l)) {
      std::fill(a->k.begin(), a->k.end(), 0.f);
      std::fill(a->v.begin(), a->v.end(), 0.f);
    }
  }
}

void State::CopyFrom(const State& other) {
  RG_CHECK(layers.size() == other.layers.size(), "State::CopyFrom: states of different models");
  pos = other.pos;
  for (size_t i = 0; i < layers.size(); ++i) layers[i] = other.layers[i];
}

size_t State::bytes() const {
  size_t n = 0;
  for (const auto& l : layers) {
    if (auto* r = std::get_if<RecurrentState>(&l)) n += (r->conv.size() + r->h.size()) * 4;
    else if (auto* a = std::get_if<AttentionState>(&l)) n += (a->k.size() + a->v.size()) * 4;
  }
  return n;
}

}  // namespace rg
