#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace rg {

namespace quant_internal {

uint16_t F32ToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (u >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (u < 0x38800000u) {                                   // below 2^-14: subnormal or 0
    float a;
    std::memcpy(&a, &u, 4);
    // a * 2^24 is exact; nearest-even to an integer in [0, 1024] (1024 is the
    // smallest normal, 0x0400, so the carry is right).
    return uint16_t(sign | uint16_t(RoundHalfEven(a * 16777216.f)));
  }
  u -= 112u << 23;  // rebias exponent 127 -> 15
  u += 0xfffu + ((u >> 13) & 1u);
  return uint16_t(sign | uint16_t(u >> 13));
}

}  // namespace quant_internal

using quant_internal::F32ToF16;

bool IsQuantizedFormat(WeightFormat f) {
  return f == WeightFormat::Q8 || f == WeightFormat::Q4 || f == WeightFormat::Q8_256 || f == WeightFormat::Q4_256;
}

bool IsQ4Family(WeightFormat f) { return f == WeightFormat::Q4 || f == WeightFormat::Q4_256; }

int QuantBlockCols(WeightFormat f) {
  RG_CHECK(IsQuantizedFormat(f), "QuantBlockCols: ", WeightFormatName(f), " is not a quantized format");
  return f == WeightFormat::Q8_256 || f == WeightFormat::Q4_256 ? 256 : 32;
}

int QuantHeaderBytes(WeightFormat f) { return QuantBlockCols(f) == 32 ? 32 : 64; }

size_t QuantBlockBytes(WeightFormat f) {
  return size_t(QuantHeaderBytes(f)) + size_t(kQuantGroupRows) * QuantBlockCols(f) * (IsQ4Family(f) ? 4 : 8) / 8;
}

size_t QuantizedGroupBytes(WeightFormat f, int64_t cols) {
  return size_t(QuantBlocksPerRow(f, cols)) * QuantBlockBytes(f);
}

size_t QuantizedBytes(WeightFormat f, int64_t rows, int64_t cols) {
  RG_CHECK(rows >= 0 && cols >= 0, "QuantizedBytes: bad shape [", rows, ", ", cols, "]");
  return size_t(QuantRowGroups(rows)) * QuantizedGroupBytes(f, cols);
}

WeightMatrix QuantizedRowSlice(const WeightMatrix& w, int64_t r0, int64_t r1) {
  RG_CHECK(IsQuantizedFormat(w.format), "QuantizedRowSlice: format ", WeightFormatName(w.format),
           " is not quantized");
  RG_CHECK(r0 % kQuantGroupRows == 0 && 0 <= r0 && r0 <= r1 && r1 <= w.rows,
           "QuantizedRowSlice: rows [", r0, ", ", r1, ") of ", w.rows,
           " (the start must be a multiple of 16)");
  WeightMatrix s = w;
  s.rows = r1 - r0;
  s.data = static_cast<const uint8_t*>(w.data) +
           size_t(r0 / kQuantGroupRows) * QuantizedGroupBytes(w.format, w.cols);
  return s;
}

namespace {

inline void StoreF16(uint8_t* p, uint16_t h) {
  p[0] = uint8_t(h & 0xff);
  p[1] = uint8_t(h >> 8);
}
inline uint16_t LoadF16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }

// Smallest binary16 >= a (a > 0, finite, representable range checked by caller).
uint16_t F16RoundUp(float a) {
  uint16_t h = F32ToF16(a);
  if (F16ToF32(h) < a) ++h;
  return h;
}

constexpr float kF16Max = 65504.f;

using quant_internal::RoundHalfEven;

// Q8: one row's block of n (<= kb) values -> scale bits + kb codes.
void QuantizeBlockQ8(const float* w, int n, int kb, uint16_t* scale, int8_t* q) {
  float amax = 0.f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(w[i]);
    amax = a > amax ? a : amax;
  }
  std::memset(q, 0, size_t(kb));
  *scale = 0;
  if (amax == 0.f) return;
  const float d = amax / 127.f;
  if (!(d <= kF16Max)) Fail("Q8 quantization: |weight| ", amax, " too large for a binary16 scale");
  const uint16_t h = F16RoundUp(d);
  if (h >= 0x7c00u) Fail("Q8 quantization: |weight| ", amax, " too large for a binary16 scale");
  const float d16 = F16ToF32(h);
  *scale = h;
  // |w / d16| <= 127 exactly (d16 >= amax / 127), so nothing clips.
  for (int i = 0; i < n; ++i) q[i] = int8_t(RoundHalfEven(w[i] / d16));
}

// Q4 nearest level. v = w / d in level units. below[u + kBelowOff] is the
// number of decision midpoints (between consecutive levels) that are < u for
// integer u; the levels are >= 8 apart, so [u, u+1) holds at most one more.
struct Q4Tables {
  static constexpr int kBelowOff = 256;
  float level[16];
  float mid[16];  // mid[15] = +inf (sentinel)
  uint8_t below[2 * kBelowOff];
  Q4Tables() {
    for (int j = 0; j < 16; ++j) level[j] = float(kQ4Codebook[j]);
    for (int j = 0; j < 15; ++j) mid[j] = 0.5f * (level[j] + level[j + 1]);
    mid[15] = INFINITY;
    for (int u = -kBelowOff; u < kBelowOff; ++u) {
      int k = 0;
      while (k < 15 && mid[k] < float(u)) ++k;
      below[u + kBelowOff] = uint8_t(k);
    }
  }
};
const Q4Tables kQ4;

inline int Q4Nearest(float v) {
  v = std::min(255.f, std::max(-255.f, v));  // minss / maxss, no branches
  const int u = int(v + 256.f);             // floor(v) + 256: v + 256 > 0 truncates down
  const int k = kQ4.below[u];
  return k + int(v > kQ4.mid[k]);
}

struct Q4Fit {
  float err;       // sum of squared errors
  float sxk, skk;  // sum w * level, sum level^2 (for the least-squares scale)
};

// Codes for scale d (a binary16 value, != 0); codes may be null.
inline Q4Fit Q4Eval(const float* w, int n, float d, uint8_t* codes) {
  const float inv = 1.f / d;
  // Four independent partial sums (fixed order, so still deterministic) keep
  // the add latency off the critical path.
  float err[4] = {}, sxk[4] = {}, skk[4] = {};
  for (int i0 = 0; i0 < n; i0 += 4)
    for (int l = 0; l < 4; ++l) {
      const int i = i0 + l;
      if (i >= n) break;
      const int k = Q4Nearest(w[i] * inv);
      if (codes) codes[i] = uint8_t(k);
      const float lv = kQ4.level[k];
      const float r = w[i] - d * lv;
      err[l] += r * r;
      sxk[l] += w[i] * lv;
      skk[l] += lv * lv;
    }
  return {(err[0] + err[1]) + (err[2] + err[3]), (sxk[0] + sxk[1]) + (sxk[2] + sxk[3]),
          (skk[0] + skk[1]) + (skk[2] + skk[3])};
}

// Q4: one row's block of n (<= kb) values -> scale bits + kb codes.
void QuantizeBlockQ4(const float* w, int n, int kb, uint16_t* scale, uint8_t* codes) {
  std::memset(codes, 0, size_t(kb));
  *scale = 0;
  float amax = 0.f, vmax = 0.f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(w[i]) > amax) {
      amax = std::fabs(w[i]);
      vmax = w[i];
    }
  if (amax == 0.f) return;
  if (!(amax / 100.f <= kF16Max))  // candidate scales are at most ~amax / 105.7
    Fail("Q4 quantization: |weight| ", amax, " too large for a binary16 scale");
  // Candidates: the largest |w| onto either end of the codebook, times a few
  // factors.
  static constexpr float kFactors[4] = {1.05f, 0.9667f, 0.8833f, 0.8f};
  float best = INFINITY;
  uint16_t best_h = 0;
  auto usable = [](uint16_t h) {
    const float d = F16ToF32(h);
    return d != 0.f && std::isfinite(d);
  };
  Q4Fit best_fit{};
  for (int end = 0; end < 2; ++end) {
    const float level = end == 0 ? kQ4.level[0] : kQ4.level[15];
    for (float f : kFactors) {
      const uint16_t h = F32ToF16(vmax / level * f);
      if (!usable(h)) continue;
      const Q4Fit fit = Q4Eval(w, n, F16ToF32(h), nullptr);
      if (fit.err < best) {
        best = fit.err;
        best_h = h;
        best_fit = fit;
      }
    }
  }
  // Up to two least-squares refits of the scale from the best codes so far
  // (more candidates or refits gain < 0.5% RMS error, measured).
  for (int it = 0; it < 2 && best < INFINITY && best_fit.skk > 0.f; ++it) {
    const uint16_t h2 = F32ToF16(best_fit.sxk / best_fit.skk);
    if (h2 == best_h || !usable(h2)) break;
    const Q4Fit fit = Q4Eval(w, n, F16ToF32(h2), nullptr);
    if (!(fit.err < best)) break;
    best = fit.err;
    best_h = h2;
    best_fit = fit;
  }
  if (best == INFINITY) return;  // every scale underflowed binary16: the block is ~0
  *scale = best_h;
  Q4Eval(w, n, F16ToF32(best_h), codes);
}

template <class Src>
inline float Load(const Src* p);
template <>
inline float Load<float>(const float* p) { return *p; }
template <>
inline float Load<uint16_t>(const uint16_t* p) { return BF16ToF32(*p); }

// Byte of row i (in its group), column c (< KB) of a block, and the nibble
// shift for Q4: the layout in quant.h.
inline size_t CodeByte(int header, bool q4, int i, int c) {
  const int j = c / 4, e = c % 4;
  return size_t(header + 64 * (q4 ? j / 2 : j) + 4 * i + e);
}
inline int NibbleShift(int c) { return 4 * ((c / 4) % 2); }

template <class Src>
void QuantizeGroups(WeightFormat f, const Src* src, int64_t rows, int64_t cols, uint8_t* dst,
                    int64_t g0, int64_t g1) {
  const int kb = QuantBlockCols(f), header = QuantHeaderBytes(f);
  const bool q4 = IsQ4Family(f);
  const int64_t nb = QuantBlocksPerRow(f, cols);
  const size_t bb = QuantBlockBytes(f), gbytes = QuantizedGroupBytes(f, cols);
  float w[256];    // one row's block, [kb]
  uint8_t q[256];  // its codes, [kb]
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* gp = dst + size_t(g) * gbytes;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = gp + size_t(b) * bb;
      std::memset(blk, 0, bb);
      const int n = int(std::min<int64_t>(kb, cols - b * kb));
      for (int i = 0; i < kQuantGroupRows; ++i) {
        const int64_t r = g * kQuantGroupRows + i;
        if (r >= rows) break;
        const Src* s = src + r * cols + b * kb;
        for (int c = 0; c < n; ++c) {
          w[c] = Load(s + c);
          if (!std::isfinite(w[c]))
            Fail("quantization: non-finite weight ", w[c], " at [", r, ", ", b * kb + c, "]");
        }
        uint16_t h = 0;
        if (!q4) {
          QuantizeBlockQ8(w, n, kb, &h, reinterpret_cast<int8_t*>(q));
          for (int c = 0; c < kb; ++c) blk[CodeByte(header, false, i, c)] = q[c];
        } else {
          QuantizeBlockQ4(w, n, kb, &h, q);
          for (int c = 0; c < kb; ++c) blk[CodeByte(header, true, i, c)] |= uint8_t(q[c] << NibbleShift(c));
        }
        StoreF16(blk + 2 * i, h);
      }
    }
  }
}

template <class Src>
void QuantizeAny(WeightFormat f, const Src* src, int64_t rows, int64_t cols, void* dst,
                 ThreadPool& pool) {
  RG_CHECK(IsQuantizedFormat(f), "QuantizeMatrix: format ", WeightFormatName(f),
           " is not quantized");
  RG_CHECK(rows >= 0 && cols >= 0, "QuantizeMatrix: bad shape [", rows, ", ", cols, "]");
  if (rows == 0 || cols == 0) return;
  std::mutex mu;
  std::string error;
  pool.ParallelFor(QuantRowGroups(rows), 1, [&](int64_t g0, int64_t g1, int) {
    try {
      QuantizeGroups(f, src, rows, cols, static_cast<uint8_t*>(dst), g0, g1);
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (error.empty()) error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
}

}  // namespace

void QuantizeMatrix(WeightFormat f, const float* src, int64_t rows, int64_t cols, void* dst,
                    ThreadPool& pool) {
  QuantizeAny(f, src, rows, cols, dst, pool);
}

void QuantizeMatrixBF16(WeightFormat f, const uint16_t* src, int64_t rows, int64_t cols,
                        void* dst, ThreadPool& pool) {
  QuantizeAny(f, src, rows, cols, dst, pool);
}

void QuantizeBlockDiag(WeightFormat f, const float* src, int64_t H, int64_t b, void* dst, ThreadPool& pool) {
  RG_CHECK(H > 0 && b > 0 && b % kQuantGroupRows == 0, "QuantizeBlockDiag: ", H, " blocks of width ", b,
           " (the width must be a multiple of ", kQuantGroupRows, ")");
  std::vector<float> t(size_t(b * b));  // [b_out, b_in] one block, transposed
  for (int64_t h = 0; h < H; ++h) {
    const float* blk = src + h * b * b;  // [b_in, b_out]
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < b; ++j) t[size_t(j * b + i)] = blk[i * b + j];
    uint8_t* head = static_cast<uint8_t*>(dst) + size_t(h * b / kQuantGroupRows) * QuantizedGroupBytes(f, b);
    QuantizeMatrix(f, t.data(), b, b, head, pool);
  }
}

void DequantizeRow(const WeightMatrix& w, int64_t r, float* out) {
  RG_CHECK(IsQuantizedFormat(w.format), "DequantizeRow: format ", WeightFormatName(w.format),
           " is not quantized");
  RG_DCHECK(r >= 0 && r < w.rows);
  const int kb = QuantBlockCols(w.format), header = QuantHeaderBytes(w.format);
  const bool q4 = IsQ4Family(w.format);
  const int64_t nb = QuantBlocksPerRow(w.format, w.cols);
  const size_t bb = QuantBlockBytes(w.format);
  const int i = int(r % kQuantGroupRows);
  const uint8_t* gp = static_cast<const uint8_t*>(w.data) +
                      size_t(r / kQuantGroupRows) * QuantizedGroupBytes(w.format, w.cols);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * bb;
    const float d = F16ToF32(LoadF16(blk + 2 * i));
    const int n = int(std::min<int64_t>(kb, w.cols - b * kb));
    float* o = out + b * kb;
    for (int c = 0; c < n; ++c) {
      const uint8_t v = blk[CodeByte(header, q4, i, c)];
      o[c] = d * float(q4 ? kQ4Codebook[(v >> NibbleShift(c)) & 15] : int8_t(v));
    }
  }
}

}  // namespace rg
