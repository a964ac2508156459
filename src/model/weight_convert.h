// Converting checkpoint tensors into the engine's storage formats.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "core/threads.h"
#include "io/safetensors.h"
#include "ops/weight_matrix.h"

namespace rg {

// out[numel] = tensor widened to f32 (F32, BF16 or F16 source).
void ConvertToF32(const TensorView& tv, float* out);

// Bytes a [rows, cols] matrix takes in `format`.
size_t MatrixStorageBytes(WeightFormat format, int64_t rows, int64_t cols);

// Writes the 2-D tensor tv in `format` into dst (MatrixStorageBytes bytes).
void ConvertMatrix(const TensorView& tv, WeightFormat format, void* dst, ThreadPool* pool);

// Quantized model directories (`rgemma quantize`): safetensors whose metadata
// names the packed format of the matrices, stored as U8 [bytes] tensors in
// the layout of ops/quant.h. Absent for plain HF checkpoints.
inline constexpr char kQuantFormatKey[] = "rgemma_matrix_format";    // "q8" | "q4"
inline constexpr char kQuantVersionKey[] = "rgemma_quant_version";   // kQuantFormatVersion
std::optional<WeightFormat> ParseWeightFormat(const std::string& name);  // "f32" "bf16" "q8" "q4"

}  // namespace rg
