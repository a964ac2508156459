// Converting checkpoint tensors into the engine's storage formats.
#pragma once

#include <cstddef>
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

// The format of the RG-LRU gate blocks ([H, b, b], otherwise kept f32 and
// run by ops/block_diag) in a model whose matrices are converted to `target`:
// the _256 formats, opt-in for prefill speed, run them as Q8_256 products
// (ops/quant_matmul.h BlockDiagMatMulQuantized; in f32 they were 4-5% of
// those formats' prefill); every other target keeps them f32, so bf16 / q8 /
// q4 compute what they always did. The f32 blocks stay what is stored and
// written. Needs b % 16 == 0 (else f32).
std::optional<WeightFormat> GateFormatFor(WeightFormat target);

// The format named `name` (WeightFormatName, or "int8" = q8).
std::optional<WeightFormat> ParseWeightFormat(const std::string& name);

}  // namespace rg
