// Quantized model directories (`rgemma quantize --to q8|q4|q8_256|q4_256`), the
// one home of their on-disk format (reader, writer, version): safetensors
// whose every matrix (IsMatrixRole) is stored as a U8 [bytes] tensor in the
// block layout of ops/quant.h (version kQuantFormatVersion); the other tensors
// are F32. Each file's metadata (absent for plain HF checkpoints) holds:
//   rgemma_matrix_format   "q8" | "q4" | "q8_256" | "q4_256": the model's format, and that of every
//                          packed matrix of the file not listed below
//   rgemma_quant_version   kQuantFormatVersion, e.g. "1"
//   rgemma_tensor_formats  optional; a JSON object {"tensor name": "q8" | "q4"}
//                          naming the matrices of this file stored in another
//                          format than rgemma_matrix_format. `--to q4` writes
//                          {"model.embed_tokens.weight": "q8"} (and lm_head.weight
//                          when present) in the file holding them
//                          (MatrixFormatFor).
// The loader honours what is declared (an older q4 directory without
// rgemma_tensor_formats loads with a q4 embedding) and checks that each packed
// tensor holds exactly MatrixStorageBytes(declared format, shape) bytes.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/threads.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/tensor_specs.h"
#include "ops/weight_matrix.h"

namespace rg {

inline constexpr char kQuantFormatKey[] = "rgemma_matrix_format";    // a quantized WeightFormatName
inline constexpr char kQuantVersionKey[] = "rgemma_quant_version";   // kQuantFormatVersion
inline constexpr char kTensorFormatsKey[] = "rgemma_tensor_formats";  // {"name": "q8" | "q4"}


// ---- reading

// What a checkpoint's metadata declares: the packed format of its matrices
// (nullopt: a plain Hugging Face checkpoint) and the matrices stored in
// another format (rgemma_tensor_formats of every file). Throws rg::Error
// naming the file on malformed or inconsistent metadata or another version.
struct PackedLayout {
  std::optional<WeightFormat> format;
  std::map<std::string, WeightFormat> tensor_formats;
};
PackedLayout ReadPackedLayout(const Checkpoint& ckpt);

// The matrix `spec` as a packed directory stores it (tv: U8 [bytes], kept in
// place); nullopt for a tensor that is not packed (not IsMatrixRole). Throws
// unless tv holds exactly MatrixStorageBytes(declared format, shape) bytes.
std::optional<WeightMatrix> PackedMatrix(const PackedLayout& layout, const TensorSpec& spec, const TensorView& tv);

// ---- writing

struct QuantizedSizes {
  size_t bytes_in = 0, bytes_out = 0;
};

// Writes the tensors of ckpt (a plain checkpoint of config c, read from
// `source`: named in messages) into `dir` with
// their matrices in `target`, mixed as MatrixFormatFor decides; the other
// tensors as F32. BF16 gives a plain Hugging Face checkpoint. Shards of at
// most shard_bytes (with model.safetensors.index.json when there are
// several). progress(done, total) in input bytes. Throws if ckpt is itself
// packed. Writes no config.json / tokenizer (the caller copies them).
QuantizedSizes WriteQuantizedTensors(const Checkpoint& ckpt, const std::string& source, const Config& c,
                                     WeightFormat target, const std::string& dir, size_t shard_bytes,
                                     ThreadPool& pool, const std::function<void(size_t done, size_t total)>& progress);

}  // namespace rg
