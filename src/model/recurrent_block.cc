// Recurrent temporal block, as the reference's RecurrentBlock:
//   y   = gelu_tanh(linear_y(x))
//   u   = conv1d(linear_x(x))      causal, depthwise, K taps
//   h   = rg_lru(u)                model/rg_lru.h
//   out = linear_out(h * y)
#include <algorithm>

#include "model/blocks.h"
#include "model/rg_lru.h"
#include "ops/activations.h"
#include "ops/matmul.h"

namespace rg {
namespace {

// Causal depthwise conv over each sequence's rows, continuing from its ring of
// the last K-1 inputs: out[p] = b + sum_{s=0..K-1} in[p - s] * w[K-1-s].
// Inputs before position 0 are zero. One parallel pass over channels for the
// whole batch; then each ring keeps its sequence's last K-1 inputs.
void Conv1d(const RecurrentWeights& w, int64_t K, int64_t L, std::span<const SeqRows<RecurrentState>> seqs,
            const float* in, float* out, ThreadPool& pool) {
  const int64_t ring = K - 1;
  pool.ParallelFor(L, 64, [&](int64_t c0, int64_t c1, int) {
    for (const SeqRows<RecurrentState>& sq : seqs) {
      const float* conv = sq.state->conv.data();  // [K-1, L], slot = pos % (K-1)
      for (int64_t j = 0; j < sq.n; ++j) {
        const int64_t pos = sq.pos0 + j;
        const int64_t t = sq.row0 + j;
        for (int64_t ch = c0; ch < c1; ++ch) out[t * L + ch] = w.conv_b[ch];
        for (int64_t back = 0; back < K && back <= pos; ++back) {
          const float* src = back <= j ? in + (t - back) * L : conv + ((pos - back) % ring) * L;
          const float* tap = w.conv_w + (K - 1 - back) * L;
          for (int64_t ch = c0; ch < c1; ++ch) out[t * L + ch] += src[ch] * tap[ch];
        }
      }
    }
  });
  for (const SeqRows<RecurrentState>& sq : seqs) {
    const int64_t keep = sq.n < ring ? sq.n : ring;
    for (int64_t j = sq.n - keep; j < sq.n; ++j) {
      const int64_t slot = (sq.pos0 + j) % ring, t = sq.row0 + j;
      std::copy(in + t * L, in + (t + 1) * L, sq.state->conv.data() + slot * L);
    }
  }
}

}  // namespace

void RecurrentBlock(const Config& c, const RecurrentWeights& w, std::span<const SeqRows<RecurrentState>> seqs,
                    const float* xn, float* out, int64_t T, const RecurrentScratch& s, KernelContext& k) {
  const int64_t L = c.lru_width;
  ThreadPool& pool = k.pool();
  const MatMulTarget y_x[] = {{&w.linear_y, s.y, w.linear_y_bias}, {&w.linear_x, s.x, w.linear_x_bias}};
  MatMulShared(y_x, xn, T, k);
  pool.ParallelFor(T * L, 4096, [&](int64_t i0, int64_t i1, int) { GeluInPlace(s.y + i0, i1 - i0); });

  Conv1d(w, c.conv_width, L, seqs, s.x, s.x_conv, pool);
  RgLru(c, w, seqs, s.x_conv, T, s.rg_lru, k);  // x_conv now holds h

  float* h = s.x_conv;
  pool.ParallelFor(T * L, 4096, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) h[i] *= s.y[i];
  });
  MatMul(w.linear_out, h, T, out, w.linear_out_bias, k);
}

}  // namespace rg
