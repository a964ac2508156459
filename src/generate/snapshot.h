// A snapshot of a sequence: the exact tokens from position 0 that produced
// it, the live part of its State (the state format's layer section: conv
// taps, RG-LRU h, min(pos, W) KV slots) and, when they were computed, the
// logits after its last token. Immutable once made; the state cache shares
// it between the sequences that resume from it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/page_buffer.h"
#include "model/state_io.h"

namespace rg {

class Snapshot {
 public:
  // Copies the live part of `state` (at position tokens.size()).
  static std::shared_ptr<const Snapshot> Capture(const State& state, const Config& c, std::span<const int32_t> tokens,
                                                 const float* logits /*[V] or null*/);
  // A state file (model/state_io.h) that carries its tokens; throws a
  // one-line rg::Error starting with `name` for anything else.
  static std::shared_ptr<const Snapshot> Parse(std::string_view file_bytes, const std::string& name, const Config& c,
                                               const ModelFingerprint& fp);

  // Into a State of config c (its position becomes pos()).
  void Restore(const Config& c, State* state) const;
  // As a state file.
  std::string Serialize(const Config& c, const ModelFingerprint& fp) const;

  int64_t pos() const { return int64_t(tokens_.size()); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const float* logits() const { return has_logits_ ? reinterpret_cast<const float*>(data_.data() + layer_bytes_) : nullptr; }
  std::string_view layers() const { return {data_.data(), layer_bytes_}; }
  // Memory held (what the cache's budget counts).
  size_t bytes() const { return sizeof(*this) + data_.size() + tokens_.capacity() * sizeof(int32_t); }

 private:
  Snapshot() = default;
  std::vector<int32_t> tokens_;
  PageBuffer data_;  // [layer section | V f32 logits if has_logits_]
  size_t layer_bytes_ = 0;
  bool has_logits_ = false;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace rg
