#include "generate/snapshot.h"

#include <cstring>

#include "core/error.h"

namespace rg {

std::shared_ptr<const Snapshot> Snapshot::Capture(const State& state, const Config& c, std::span<const int32_t> tokens,
                                                  const float* logits) {
  RG_CHECK(int64_t(tokens.size()) == state.pos, "snapshot: ", tokens.size(), " tokens for a state at position ",
           state.pos);
  std::shared_ptr<Snapshot> s(new Snapshot);
  s->tokens_.assign(tokens.begin(), tokens.end());
  s->layer_bytes_ = LayerSectionBytes(c, state.pos);
  s->has_logits_ = logits != nullptr;
  const size_t logit_bytes = logits ? size_t(c.vocab_size) * sizeof(float) : 0;
  s->data_ = PageBuffer(s->layer_bytes_ + logit_bytes);
  EncodeLayers(state, c, s->data_.data());
  if (logits) std::memcpy(s->data_.data() + s->layer_bytes_, logits, logit_bytes);
  return s;
}

std::shared_ptr<const Snapshot> Snapshot::Parse(std::string_view file_bytes, const std::string& name, const Config& c,
                                                const ModelFingerprint& fp) {
  const ParsedStateFile f = ParseStateFile(file_bytes, name, c, fp);
  RG_CHECK(int64_t(f.extras.tokens.size()) == f.pos, name, ": the state file has no tokens (a snapshot needs the ",
           f.pos, " tokens it was made from)");
  std::shared_ptr<Snapshot> s(new Snapshot);
  s->tokens_ = f.extras.tokens;
  s->layer_bytes_ = f.layers.size();
  s->has_logits_ = !f.extras.logits.empty();
  const size_t logit_bytes = f.extras.logits.size() * sizeof(float);
  s->data_ = PageBuffer(s->layer_bytes_ + logit_bytes);
  std::memcpy(s->data_.data(), f.layers.data(), f.layers.size());
  if (logit_bytes) std::memcpy(s->data_.data() + s->layer_bytes_, f.extras.logits.data(), logit_bytes);
  return s;
}

void Snapshot::Restore(const Config& c, State* state) const { DecodeLayers(layers(), "snapshot", c, pos(), state); }

std::string Snapshot::Serialize(const Config& c, const ModelFingerprint& fp) const {
  StateFileExtras ex;
  ex.tokens = tokens_;
  if (const float* l = logits()) ex.logits.assign(l, l + c.vocab_size);
  return SerializeStateParts(c, fp, pos(), ex, layers());
}

}  // namespace rg
