// The state file format: a sequence's whole State, plus optionally the exact
// tokens that produced it, the logits after its last token and an opaque
// application blob, in one versioned, checksummed file. Used for
// `rgemma chat` /save, `generate --prompt-cache`, the state cache's disk tier
// and shared stores. The size is bounded by the config, never by the
// conversation: attention layers store only their used KV slots
// (min(pos, W)), recurrent layers their conv taps and RG-LRU h.
//
// File layout, version 2 (integers little-endian, floats IEEE-754 binary32 LE):
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
//    56  u64      XXH3-64 of bytes [0, 56)
//   sections
//    64  u64      n_tokens: 0, or pos (the tokens that produced the state)
//    72  u64      n_logits: 0, or vocab_size (the logits after the last token)
//    80  u64      n_app: bytes of application data (<= kMaxAppBytes)
//    88  i32[n_tokens], f32[n_logits], u8[n_app], zero bytes up to a multiple of 4
//   per layer, in order (the "layer section")
//         u32 kind (0 recurrent, 1 attention), u32 a, u32 b, u32 0
//         recurrent: a = lru_width L, b = conv_width - 1;
//                    f32 conv[b * L] (ring, slot = pos % b), f32 h[L]
//         attention: a = used slots n = min(pos, W), b = head_dim h;
//                    f32 k[n * h], f32 v[n * h] (slots 0 .. n-1 of the ring)
//   trailer
//         u64      XXH3-64 of bytes [0, size - 8)
//
// Version 1 files (rgemma chat /save before version 2) are read too: their
// 16 + 4n bytes after the header (chat flags, recent-token count, turns,
// recent tokens) become the application data, and header/trailer hashes are
// word-wise FNV-1a 64.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/state.h"
#include "model/weights.h"

namespace rg {

inline constexpr uint32_t kStateFormatVersion = 2;
inline constexpr uint64_t kMaxStateTokens = uint64_t(1) << 24;  // longer sequences are saved without tokens
inline constexpr uint64_t kMaxAppBytes = uint64_t(8) << 20;

struct ModelFingerprint {
  uint64_t config = 0;
  uint64_t weights = 0;
  bool operator==(const ModelFingerprint&) const = default;
};

// Word-wise FNV-1a 64 (h = (h ^ word) * 0x100000001b3 over LE u64 words,
// then the tail bytes one by one): any change confined to one word is
// always detected. The model fingerprint and version-1 files use it.
uint64_t HashBytes(const void* data, size_t n, uint64_t seed = 0xcbf29ce484222325ull);
// The model's shape (config) and whether its output head is the embedding
// (Weights::tied_lm_head): the config half of a ModelFingerprint.
uint64_t HashConfig(const Config& c, bool tied_lm_head);
ModelFingerprint FingerprintOf(const Weights& w);

// What a state file holds besides the State.
struct StateFileExtras {
  std::vector<int32_t> tokens;  // empty, or exactly pos tokens from position 0
  std::vector<float> logits;    // empty, or [vocab] after the last token
  std::string app;              // opaque application data (<= kMaxAppBytes)
};

// ---- The layer section alone: what a snapshot of a State must keep.
// Bytes of the layer section of a state at `pos`.
size_t LayerSectionBytes(const Config& c, int64_t pos);
// Writes the layer section of `state` (LayerSectionBytes(c, state.pos) bytes) to out.
void EncodeLayers(const State& state, const Config& c, char* out);
// Restores a layer section of a state at `pos` into *state (a State of
// config c): conv taps, h and the used KV slots; state->pos = pos. Throws a
// one-line rg::Error starting with `name` if the section is malformed; *state
// may then be partly written (callers restore into a slot they reset on error).
void DecodeLayers(std::string_view section, const std::string& name, const Config& c, int64_t pos, State* state);

// ---- Whole files.
// The largest state file a model of config c can have (full KV windows, the
// most tokens, logits and application data a file may carry).
size_t MaxStateFileBytes(const Config& c);
// The bytes of a state file from its parts (layers: a layer section of a
// state at `pos`).
std::string SerializeStateParts(const Config& c, const ModelFingerprint& fp, int64_t pos,
                                const StateFileExtras& extras, std::string_view layers);
std::string SerializeState(const State& state, const Config& c, const ModelFingerprint& fp,
                           const StateFileExtras& extras);

// A validated state file, split into its parts (views into the bytes).
struct ParsedStateFile {
  uint32_t version = 0;
  int64_t pos = 0;
  StateFileExtras extras;
  std::string_view layers;  // the layer section, already checked against the config
};
// Validates every field, the sizes and the checksum of a state file written
// for (c, fp). Throws a one-line rg::Error starting with `name` on anything
// wrong (not a state file, another model, truncated, corrupt).
ParsedStateFile ParseStateFile(std::string_view bytes, const std::string& name, const Config& c,
                               const ModelFingerprint& fp);
// ParseStateFile, then the State into *state (a State of config c), which is
// only modified on success.
StateFileExtras ParseState(std::string_view bytes, const std::string& name, const Config& c,
                           const ModelFingerprint& fp, State* state);

// Written atomically (core/file_io.h: a unique temporary file, fsync, rename).
void SaveState(const std::string& path, const State& state, const Config& c, const ModelFingerprint& fp,
               const StateFileExtras& extras);
// Reads (a regular file, at most the largest size a state of this model can
// have) and validates a state file; *state is only modified on success.
StateFileExtras LoadState(const std::string& path, const Config& c, const ModelFingerprint& fp, State* state);
// The whole file's bytes, read with the same checks (size bounded before
// anything big is allocated); no parsing beyond the header.
std::string ReadStateFileBytes(const std::string& path, const Config& c, const ModelFingerprint& fp);

}  // namespace rg
