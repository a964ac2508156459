#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/matmul.h"
#include "ops/quant.h"

namespace rg {

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "f32";
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::Q8: return "q8";
    case WeightFormat::Q4: return "q4";
    case WeightFormat::Q8_256: return "q8_256";
    case WeightFormat::Q4_256: return "q4_256";
  }
  return "?";
}

void ReadRow(const WeightMatrix& w, int64_t r, float* out) {
  RG_DCHECK(r >= 0 && r < w.rows);
  switch (w.format) {
    case WeightFormat::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + r * w.cols, w.cols * sizeof(float));
      return;
    case WeightFormat::BF16: {
      const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * w.cols;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = BF16ToF32(row[c]);
      return;
    }
    default:
      DequantizeRow(w, r, out);
      return;
  }
}

void MatMulScalar(const WeightMatrix& w, const float* x, int64_t T, float* y, const float* bias) {
  switch (w.format) {
    case WeightFormat::F32: {
      const float* W = static_cast<const float*>(w.data);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < w.rows; ++r) {
          float acc = 0.f;
          for (int64_t c = 0; c < w.cols; ++c) acc += W[r * w.cols + c] * x[t * w.cols + c];
          y[t * w.rows + r] = acc + (bias ? bias[r] : 0.f);
        }
      return;
    }
    case WeightFormat::BF16: {
      const uint16_t* W = static_cast<const uint16_t*>(w.data);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < w.rows; ++r) {
          float acc = 0.f;
          for (int64_t c = 0; c < w.cols; ++c) acc += BF16ToF32(W[r * w.cols + c]) * x[t * w.cols + c];
          y[t * w.rows + r] = acc + (bias ? bias[r] : 0.f);
        }
      return;
    }
    default:
      Fail("MatMulScalar: weight format ", WeightFormatName(w.format), " not supported");
  }
}

}  // namespace rg
