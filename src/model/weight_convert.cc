#include "model/weight_convert.h"

#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/quant.h"

namespace rg {

void ConvertToF32(const TensorView& tv, float* out) {
  const int64_t n = tv.numel();
  switch (tv.dtype) {
    case DType::F32:
      std::memcpy(out, tv.data, size_t(n) * 4);
      return;
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(tv.data);
      for (int64_t i = 0; i < n; ++i) out[i] = BF16ToF32(p[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(tv.data);
      for (int64_t i = 0; i < n; ++i) out[i] = F16ToF32(p[i]);
      return;
    }
    default:
      Fail(tv.file, ": tensor '", tv.name, "' has dtype ", DTypeName(tv.dtype), "; expected F32, BF16 or F16");
  }
}

std::optional<WeightFormat> ParseWeightFormat(const std::string& name) {
  for (WeightFormat f : kAllWeightFormats)
    if (name == WeightFormatName(f)) return f;
  if (name == "int8") return WeightFormat::Q8;
  return std::nullopt;
}

bool IsMatrixRole(TensorRole role) { return role == TensorRole::kMatrix || role == TensorRole::kEmbedding; }

WeightFormat MatrixFormatFor(TensorRole role, WeightFormat target) {
  RG_CHECK(IsMatrixRole(role), "MatrixFormatFor: role ", int(role), " is not a matrix");
  if (role == TensorRole::kEmbedding && IsQ4Family(target))
    return target == WeightFormat::Q4 ? WeightFormat::Q8 : WeightFormat::Q8_256;
  return target;
}

std::optional<WeightFormat> GateFormatFor(WeightFormat target) {
  if (target == WeightFormat::Q8_256 || target == WeightFormat::Q4_256) return WeightFormat::Q8_256;
  return std::nullopt;
}

size_t MatrixStorageBytes(WeightFormat format, int64_t rows, int64_t cols) {
  switch (format) {
    case WeightFormat::F32: return size_t(rows * cols) * 4;
    case WeightFormat::BF16: return size_t(rows * cols) * 2;
    default:
      RG_CHECK(IsQuantizedFormat(format), "unknown weight format ", int(format));
      return QuantizedBytes(format, rows, cols);
  }
}

void ConvertMatrix(const TensorView& tv, WeightFormat format, void* dst, ThreadPool* pool) {
  const int64_t rows = tv.shape[0], cols = tv.shape[1];
  switch (format) {
    case WeightFormat::F32:
      ConvertToF32(tv, static_cast<float*>(dst));
      return;
    case WeightFormat::BF16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      if (tv.dtype == DType::BF16) {
        std::memcpy(out, tv.data, size_t(rows * cols) * 2);
        return;
      }
      std::vector<float> row(cols);
      TensorView one = tv;
      for (int64_t r = 0; r < rows; ++r) {
        one.shape = {cols};
        one.data = static_cast<const char*>(tv.data) + r * cols * DTypeSize(tv.dtype);
        ConvertToF32(one, row.data());
        for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = F32ToBF16(row[c]);
      }
      return;
    }
    default: {
      RG_CHECK(IsQuantizedFormat(format), "unknown weight format ", int(format));
      ThreadPool local(1);
      ThreadPool& p = pool ? *pool : local;
      if (tv.dtype == DType::BF16) {
        QuantizeMatrixBF16(format, static_cast<const uint16_t*>(tv.data), rows, cols, dst, p);
      } else if (tv.dtype == DType::F32) {
        QuantizeMatrix(format, static_cast<const float*>(tv.data), rows, cols, dst, p);
      } else {
        std::vector<float> wide(static_cast<size_t>(rows * cols));
        ConvertToF32(tv, wide.data());
        QuantizeMatrix(format, wide.data(), rows, cols, dst, p);
      }
      return;
    }
  }
}

}  // namespace rg
