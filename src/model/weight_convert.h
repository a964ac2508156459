// Converting checkpoint tensors into the engine's storage formats.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "core/threads.h"
#include "io/safetensors.h"
#include "model/tensor_specs.h"
#include "ops/weight_matrix.h"

namespace rg {

// out[numel] = tensor widened to f32 (F32, BF16 or F16 source).
void ConvertToF32(const TensorView& tv, float* out);

// Bytes a [rows, cols] matrix takes in `format`.
size_t MatrixStorageBytes(WeightFormat format, int64_t rows, int64_t cols);

// Writes the 2-D tensor tv in `format` into dst (MatrixStorageBytes bytes).
void ConvertMatrix(const TensorView& tv, WeightFormat format, void* dst, ThreadPool* pool);

// True for the roles stored as a WeightMatrix (kMatrix, kEmbedding): the
// tensors that are converted / quantized; every other role stays f32.
bool IsMatrixRole(TensorRole role);

// The mixing policy, the one place that decides it: the format a matrix of
// `role` gets when a model is converted to `target`, both by `rgemma quantize`
// and by LoadOptions::matrix_format at load. Every matrix takes `target`,
// except that a Q4 target keeps the embedding / output head (kEmbedding:
// model.embed_tokens.weight and an explicit lm_head.weight) at Q8 (Q4_256 at
// Q8_256), as
// llama.cpp's Q4_K_M-style mixes do: it is read for every decoded token as the
// output head, and 4 bits there cost most of the q4 accuracy loss.
WeightFormat MatrixFormatFor(TensorRole role, WeightFormat target);

// Quantized model directories (`rgemma quantize --to q8|q4|q8_256|q4_256`): safetensors
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
inline constexpr char kQuantFormatKey[] = "rgemma_matrix_format";    // a quantized WeightFormatName
inline constexpr char kQuantVersionKey[] = "rgemma_quant_version";   // kQuantFormatVersion
inline constexpr char kTensorFormatsKey[] = "rgemma_tensor_formats";  // {"name": "q8" | "q4"}
std::optional<WeightFormat> ParseWeightFormat(const std::string& name);  // WeightFormatName, or "int8" = q8

// The rgemma_tensor_formats value of `file`, parsed: throws rg::Error (one
// line, naming the file and the offending tensor) unless it is a JSON object
// whose values are "q8" or "q4".
std::map<std::string, WeightFormat> ParseTensorFormats(const std::string& value, const std::string& file);
// The rgemma_tensor_formats value for `formats` (compact JSON object).
std::string TensorFormatsJson(const std::map<std::string, WeightFormat>& formats);

}  // namespace rg
