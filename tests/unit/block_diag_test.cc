// The RG-LRU gates' block-diagonal product (ops/block_diag.h): the scalar
// oracle against an independent per-head formulation, every ISA level against
// the oracle over odd sizes and token counts, and decode == prefill bitwise.
#include "ops/block_diag.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/threads.h"
#include "ops/cpu_features.h"
#include "ops/matmul.h"

namespace rg {
namespace {

struct Problem {
  int64_t T, H, b;
  std::vector<float> w, x, bias;  // [H, b_in, b_out], [T, H*b], [H*b]
};

Problem Make(int64_t T, int64_t H, int64_t b, std::mt19937& rng) {
  std::normal_distribution<float> g;
  Problem p{T, H, b, std::vector<float>(H * b * b), std::vector<float>(T * H * b), std::vector<float>(H * b)};
  for (float& v : p.w) v = g(rng);
  for (float& v : p.x) v = g(rng);
  for (float& v : p.bias) v = g(rng);
  return p;
}

std::string Where(const char* what, int64_t T, int64_t H, int64_t b) {
  return std::string(what) + " T=" + std::to_string(T) + " H=" + std::to_string(H) + " b=" + std::to_string(b);
}

// The oracle equals MatMulScalar on each head's block transposed to
// [b_out, b_in] (the einsum "...hi,hij->...hj" written as y = W^T x).
TEST(BlockDiagMatMul, OracleEqualsPerHeadProducts) {
  std::mt19937 rng(11);
  for (auto [H, b] : {std::pair<int64_t, int64_t>{1, 7}, {3, 17}, {2, 64}}) {
    for (int64_t T : {1, 3}) {
      const Problem p = Make(T, H, b, rng);
      const int64_t L = H * b;
      std::vector<float> y(T * L), want(T * L);
      BlockDiagMatMulScalar(p.w.data(), p.x.data(), T, H, b, y.data(), p.bias.data());
      for (int64_t hd = 0; hd < H; ++hd) {
        std::vector<float> wt(b * b), xs(T * b), ys(T * b);
        for (int64_t i = 0; i < b; ++i)
          for (int64_t j = 0; j < b; ++j) wt[j * b + i] = p.w[(hd * b + i) * b + j];
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < b; ++i) xs[t * b + i] = p.x[t * L + hd * b + i];
        MatMulScalar({WeightFormat::F32, b, b, wt.data()}, xs.data(), T, ys.data(), p.bias.data() + hd * b);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < b; ++j) want[t * L + hd * b + j] = ys[t * b + j];
      }
      for (int64_t i = 0; i < T * L; ++i)
        ASSERT_NEAR(y[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << Where("oracle", T, H, b);
    }
  }
}

// Each level against the oracle; sizes around the AVX-512 tiles (16-lane
// vectors, 64-output tiles, 256-output decode passes, 6-token groups).
// Tolerance: the SIMD kernels fuse each multiply-add (one rounding instead of
// two per term): |dy| <= 1e-5 * sum_i |x_i w_ij| + 1e-6 covers b <= 300 terms
// of relative error 2^-24 each with a wide margin.
TEST(BlockDiagMatMul, EveryIsaMatchesTheOracle) {
  std::mt19937 rng(12);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (int(isa) > int(HardwareIsa())) continue;
    KernelOptions options;
    options.isa = isa;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      KernelContext ctx(pool, options);
      for (auto [H, b] : {std::pair<int64_t, int64_t>{1, 7}, {3, 17}, {2, 63}, {2, 64}, {1, 65}, {1, 300}}) {
        for (int64_t T : {1, 2, 5, 6, 7, 13, 40}) {
          const Problem p = Make(T, H, b, rng);
          const int64_t L = H * b;
          std::vector<float> y(T * L), want(T * L);
          BlockDiagMatMulScalar(p.w.data(), p.x.data(), T, H, b, want.data(), p.bias.data());
          BlockDiagMatMul(p.w.data(), p.x.data(), T, H, b, y.data(), p.bias.data(), ctx);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t hd = 0; hd < H; ++hd)
              for (int64_t j = 0; j < b; ++j) {
                double mag = 0;
                for (int64_t i = 0; i < b; ++i)
                  mag += std::fabs(double(p.x[t * L + hd * b + i]) * p.w[(hd * b + i) * b + j]);
                const int64_t k = t * L + hd * b + j;
                ASSERT_NEAR(y[k], want[k], 1e-5 * mag + 1e-6)
                    << IsaName(isa) << " threads=" << threads << " " << Where("", T, H, b) << " t=" << t
                    << " j=" << j;
              }
        }
      }
    }
  }
}

// A token computed alone (decode) gives the same bits as in a batch
// (prefill), at every level, without bias too.
TEST(BlockDiagMatMul, DecodeEqualsPrefillBitwise) {
  std::mt19937 rng(13);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (int(isa) > int(HardwareIsa())) continue;
    KernelOptions options;
    options.isa = isa;
    ThreadPool pool(2);
    KernelContext ctx(pool, options);
    for (auto [H, b] : {std::pair<int64_t, int64_t>{2, 17}, {10, 256}, {1, 300}}) {
      const int64_t T = 13, L = H * b;
      const Problem p = Make(T, H, b, rng);
      for (const float* bias : {p.bias.data(), static_cast<const float*>(nullptr)}) {
        std::vector<float> batch(T * L), one(L);
        BlockDiagMatMul(p.w.data(), p.x.data(), T, H, b, batch.data(), bias, ctx);
        for (int64_t t = 0; t < T; ++t) {
          BlockDiagMatMul(p.w.data(), p.x.data() + t * L, 1, H, b, one.data(), bias, ctx);
          for (int64_t k = 0; k < L; ++k)
            ASSERT_EQ(one[k], batch[t * L + k]) << IsaName(isa) << " " << Where("", T, H, b) << " t=" << t;
        }
      }
    }
  }
}

}  // namespace
}  // namespace rg
