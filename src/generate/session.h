// One sequence being run: shared immutable Weights + its own State, Scratch
// and logits buffer. The building block of generate, chat, forward and serve.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/threads.h"
#include "model/griffin.h"

namespace rg {

// Prompt rows per Forward call by default. Measured on the 2B q8 model, 512-
// token prompt (docs/PERFORMANCE.md): 128 rows 145 tok/s, 256 rows 138, 512
// rows 132 — beyond ~128 rows the [T, 7680] MLP activations fall out of the
// caches between the GEMMs and the elementwise passes.
inline constexpr int64_t kDefaultPrefillChunk = 128;

class Session {
 public:
  // max_rows bounds the rows of one Forward call (prefill chunk size); it
  // sizes the scratch, so memory does not depend on prompt length.
  // kernel_options: how its matrix products run (ops/kernel_context.h).
  Session(std::shared_ptr<const Weights> weights, ThreadPool& pool, int64_t max_rows = kDefaultPrefillChunk,
          const KernelOptions& kernel_options = {});

  // Feeds tokens (any number, in chunks) and returns the logits after the last
  // one [V]. The returned pointer is valid until the next call.
  const float* Prefill(std::span<const int32_t> tokens);
  // Feeds one token through the cached (decode) path.
  const float* Step(int32_t token);
  // Feeds tokens and writes the logits of every one into out [n, V].
  void ForwardAll(std::span<const int32_t> tokens, float* out);

  void Reset() { state_.Reset(); }
  int64_t pos() const { return state_.pos; }
  State& state() { return state_; }
  const State& state() const { return state_; }
  const Weights& weights() const { return *weights_; }
  const Config& config() const { return weights_->config; }
  Scratch& scratch() { return scratch_; }
  const float* logits() const { return logits_.data(); }

 private:
  std::shared_ptr<const Weights> weights_;
  State state_;
  Scratch scratch_;
  std::vector<float> logits_;  // [V]
};

}  // namespace rg
