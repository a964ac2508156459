#include "generate/session.h"

#include <algorithm>

#include "core/error.h"
#include "ops/quant.h"

namespace rg {

int64_t DefaultPrefillChunk(const Weights& w) {
  const bool int8 = !w.layers.empty() && IsQuantizedFormat(w.layers[0].mlp.gate.format);
  return int8 ? kDefaultPrefillChunkInt8 : kDefaultPrefillChunk;
}

Session::Session(std::shared_ptr<const Weights> weights, ThreadPool& pool, int64_t max_rows,
                 const KernelOptions& kernel_options)
    : weights_(std::move(weights)),
      state_(weights_->config),
      scratch_(weights_->config, max_rows == 0 ? DefaultPrefillChunk(*weights_) : std::max<int64_t>(1, max_rows), pool,
               kernel_options),
      logits_(size_t(weights_->config.vocab_size)) {}

const float* Session::Prefill(std::span<const int32_t> tokens) {
  RG_CHECK(!tokens.empty(), "Prefill: no tokens");
  for (size_t i = 0; i < tokens.size(); i += size_t(scratch_.max_rows)) {
    const int64_t n = std::min<int64_t>(scratch_.max_rows, int64_t(tokens.size() - i));
    const bool last = i + size_t(n) == tokens.size();
    SeqChunk ch{&state_, tokens.data() + i, n, last ? LogitsWanted::kLast : LogitsWanted::kNone};
    Forward(*weights_, std::span<const SeqChunk>(&ch, 1), scratch_, logits_.data());
  }
  return logits_.data();
}

const float* Session::Step(int32_t token) {
  SeqChunk ch{&state_, &token, 1, LogitsWanted::kLast};
  Forward(*weights_, std::span<const SeqChunk>(&ch, 1), scratch_, logits_.data());
  return logits_.data();
}

void Session::ForwardAll(std::span<const int32_t> tokens, float* out) {
  const int64_t V = config().vocab_size;
  for (size_t i = 0; i < tokens.size(); i += size_t(scratch_.max_rows)) {
    const int64_t n = std::min<int64_t>(scratch_.max_rows, int64_t(tokens.size() - i));
    SeqChunk ch{&state_, tokens.data() + i, n, LogitsWanted::kAll};
    Forward(*weights_, std::span<const SeqChunk>(&ch, 1), scratch_, out + int64_t(i) * V);
  }
}

}  // namespace rg
