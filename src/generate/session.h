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

// Prompt rows per Forward call (the prefill chunk) by default, by how the
// MLP matrices are stored. Measured on the 2B model, 512-token prompt
// (docs/PERFORMANCE.md): on a Zen 4, q8 ran 145 tok/s at 128 rows, 138 at
// 256, 132 at 512 (the [T, 7680] MLP activations fall out of the caches
// between the GEMMs and the elementwise passes); on a Zen 5, with the 6-token
// int8 tiles, 256 rows lift q8_256 by 6-13% and q4 by 8% over 128 (q8 flat:
// a block of weights is read from DRAM once per chunk), while bf16 fast
// loses 5-9%. So the int8 formats take 256 rows, the others 128.
inline constexpr int64_t kDefaultPrefillChunk = 128;
inline constexpr int64_t kDefaultPrefillChunkInt8 = 256;
int64_t DefaultPrefillChunk(const Weights& w);

class Session {
 public:
  // max_rows bounds the rows of one Forward call (prefill chunk size; 0:
  // DefaultPrefillChunk); it sizes the scratch, so memory does not depend on
  // prompt length.
  // kernel_options: how its matrix products run (ops/kernel_context.h).
  Session(std::shared_ptr<const Weights> weights, ThreadPool& pool, int64_t max_rows = 0,
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
