// Saving and restoring a sequence's whole State (plus what `rgemma chat` needs
// to resume a conversation) in a versioned binary file. The size is bounded by
// the config, never by the conversation: attention layers store only their
// used KV slots (min(pos, W)), recurrent layers their conv taps and RG-LRU h.
//
// File layout (all integers little-endian, floats IEEE-754 binary32 LE):
//
//   header, 64 bytes
//     0  char[8]  magic "RGSTATE\0"
//     8  u32      format version (kStateFormatVersion)
//    12  u32      flags, 0 (reserved)
//    16  u64      file size in bytes, trailer included
//    24  u64      config hash (every Config field)
//    32  u64      weights hash (the model's small f32 vectors: norms, biases,
//                 conv taps, RG-LRU parameters; independent of how the big
//                 matrices are stored or quantized)
//    40  i64      pos (tokens in the sequence)
//    48  u32      number of layers
//    52  u32      0 (reserved)
//    56  u64      hash of bytes [0, 56)
//   chat extras
//    64  u32      flags: bit 0 started (BOS + first turn fed), bit 1 the
//                 context ends with <end_of_turn>; other bits 0
//    68  u32      n_recent
//    72  i64      turns completed
//    80  i32[n_recent]  the last tokens fed (sampler penalty history)
//   per layer, in order
//         u32 kind (0 recurrent, 1 attention), u32 a, u32 b, u32 0
//         recurrent: a = lru_width L, b = conv_width - 1;
//                    f32 conv[b * L] (ring, slot = pos % b), f32 h[L]
//         attention: a = used slots n = min(pos, W), b = head_dim h;
//                    f32 k[n * h], f32 v[n * h] (slots 0 .. n-1 of the ring)
//   trailer
//         u64      checksum of bytes [0, size - 8)
//
// Hashes: word-wise FNV-1a 64 (h = (h ^ word) * 0x100000001b3 over LE u64
// words, then the tail bytes one by one): any change confined to one word is
// always detected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/state.h"
#include "model/weights.h"

namespace rg {

inline constexpr uint32_t kStateFormatVersion = 1;
inline constexpr uint32_t kMaxRecentTokens = 1u << 20;

// What `rgemma chat` carries besides the model State.
struct ChatExtras {
  bool started = false;                  // the first user turn (with BOS) was fed
  bool context_has_end_of_turn = false;  // the context ends with <end_of_turn>
  int64_t turns = 0;                     // completed turns (for numbering)
  std::vector<int32_t> recent_tokens;    // last fed tokens, oldest first (<= kMaxRecentTokens)
};

struct ModelFingerprint {
  uint64_t config = 0;
  uint64_t weights = 0;
};

uint64_t HashBytes(const void* data, size_t n, uint64_t seed = 0xcbf29ce484222325ull);
uint64_t HashConfig(const Config& c);
ModelFingerprint FingerprintOf(const Weights& w);

// The bytes of a state file.
std::string SerializeState(const State& state, const Config& c, const ModelFingerprint& fp,
                           const ChatExtras& extras);

// Parses the bytes of a state file written for (c, fp) into *state (which must
// be a State of config c). Throws a one-line rg::Error starting with `name`
// on anything wrong; *state is untouched then.
ChatExtras ParseState(std::string_view bytes, const std::string& name, const Config& c,
                      const ModelFingerprint& fp, State* state);

// Written atomically (core/file_io.h: a unique temporary file, fsync, rename).
void SaveState(const std::string& path, const State& state, const Config& c,
               const ModelFingerprint& fp, const ChatExtras& extras);
void SaveState(const std::string& path, const State& state, const Weights& w, const ChatExtras& extras);

// Reads and validates a state file; *state is only modified on success.
ChatExtras LoadState(const std::string& path, const Config& c, const ModelFingerprint& fp, State* state);
ChatExtras LoadState(const std::string& path, const Weights& w, State* state);

}  // namespace rg
