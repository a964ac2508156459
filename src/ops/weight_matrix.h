// A read-only weight matrix [rows, cols], row-major, in one of the storage
// formats the kernels understand. It does not own its bytes (they live in the
// mmapped checkpoint or in a buffer owned by Weights).
#pragma once

#include <cstdint>

namespace rg {

enum class WeightFormat {
  F32,     // float[rows * cols]
  BF16,    // uint16_t[rows * cols], bfloat16 bits
  Q8,      // see ops/quant.h: 16-row groups x 32-column blocks of int8, f16 scale per row and block
  Q4,      // see ops/quant.h: the same blocks of 4-bit codebook indices
  Q8_256,  // Q8 with 256-column blocks (opt-in: faster prefill, see ops/quant.h)
  Q4_256,  // Q4 with 256-column blocks
};
inline constexpr WeightFormat kAllWeightFormats[] = {WeightFormat::F32, WeightFormat::BF16,
                                                     WeightFormat::Q8,  WeightFormat::Q4,
                                                     WeightFormat::Q8_256, WeightFormat::Q4_256};

// "f32", "bf16", "q8", "q4", "q8_256", "q4_256".
const char* WeightFormatName(WeightFormat f);

struct WeightMatrix {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
  const void* data = nullptr;
};

// One product of a batch that shares its activations:
// y[t, r] = sum_c w[r, c] * x[t, c] (+ bias[r]).
struct MatMulTarget {
  const WeightMatrix* w;
  float* y;           // [T, w->rows]
  const float* bias;  // [w->rows] or null
};

}  // namespace rg
