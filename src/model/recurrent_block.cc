// Recurrent (RG-LRU) temporal block, as the reference's RecurrentBlock:
//   y   = gelu_tanh(linear_y(x))
//   u   = conv1d(linear_x(x))                 causal, depthwise, K taps
//   gx  = sigmoid(BlockDiag_in(u)),  ga = sigmoid(BlockDiag_a(u))
//   log_a = -8 * ga * softplus(Λ);   a = exp(log_a);   a² = exp(2 log_a)
//   h_t = a_t * h_{t-1} + sqrt(1 - a_t²) * (gx_t * u_t)
//         except at pos 0: a := 0 and the multiplier := 1 (reset)
//   out = linear_out(h * y)
#include <cmath>

#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/matmul.h"
#include "ops/recurrence.h"

namespace rg {
namespace {

// Causal depthwise conv over each sequence's rows, continuing from its ring of
// the last K-1 inputs: out[p] = b + sum_{s=0..K-1} in[p - s] * w[K-1-s].
// Inputs before position 0 are zero. One parallel pass over channels for the
// whole batch.
void Conv1d(const RecurrentWeights& w, int64_t K, int64_t L, int layer, const std::vector<RowSpan>& spans,
            const float* in, float* out, ThreadPool& pool) {
  const int64_t ring = K - 1;
  pool.ParallelFor(L, 64, [&](int64_t c0, int64_t c1, int) {
    for (const RowSpan& sp : spans) {
      const RecurrentState& st = std::get<RecurrentState>(sp.state->layers[layer]);
      for (int64_t j = 0; j < sp.n; ++j) {
        const int64_t pos = sp.pos0 + j;
        const int64_t t = sp.row0 + j;
        for (int64_t ch = c0; ch < c1; ++ch) out[t * L + ch] = w.conv_b[ch];
        for (int64_t back = 0; back < K && back <= pos; ++back) {
          const float* src = back <= j ? in + (t - back) * L
                                       : st.conv.data() + ((pos - back) % ring) * L;
          const float* tap = w.conv_w + (K - 1 - back) * L;
          for (int64_t ch = c0; ch < c1; ++ch) out[t * L + ch] += src[ch] * tap[ch];
        }
      }
    }
  });
  // Keep each sequence's last K-1 inputs for the next call.
  for (const RowSpan& sp : spans) {
    RecurrentState& st = std::get<RecurrentState>(sp.state->layers[layer]);
    const int64_t keep = sp.n < ring ? sp.n : ring;
    for (int64_t j = sp.n - keep; j < sp.n; ++j) {
      const int64_t pos = sp.pos0 + j;
      std::copy(in + (sp.row0 + j) * L, in + (sp.row0 + j + 1) * L, st.conv.data() + (pos % ring) * L);
    }
  }
}

// out[t, h*b + j] = sigmoid(sum_i in[t, h*b + i] * W[h, j, i] + bias[h*b + j])
void BlockDiagGate(const float* weight, const float* bias, const float* in, int64_t T, int64_t H,
                   int64_t b, float* out, Scratch& s) {
  BlockDiagMatMul(weight, in, T, H, b, out, bias, s.head_in.data(), s.head_out.data(), s.kernels);
  s.pool.ParallelFor(T * H * b, 4096, [&](int64_t i0, int64_t i1, int) { SigmoidInPlace(out + i0, i1 - i0); });
}

// The RG-LRU scan over each sequence's rows; h carried in f32. Writes h into
// `u` in place (u becomes the layer's recurrent output). Channels are
// independent: one parallel pass over them for the whole batch.
void RgLruScan(const RecurrentWeights& w, int64_t L, int layer, const std::vector<RowSpan>& spans, float* u,
               const float* gx, const float* ga, ThreadPool& pool) {
  pool.ParallelFor(L, 64, [&](int64_t c0, int64_t c1, int) {
    for (const RowSpan& sp : spans) {
      float* h = std::get<RecurrentState>(sp.state->layers[layer]).h.data();  // [L]
      for (int64_t j = 0; j < sp.n; ++j) {
        const int64_t t = sp.row0 + j;
        GatedRecurrenceStep(w.log_a_scale + c0, ga + t * L + c0, gx + t * L + c0, u + t * L + c0, h + c0,
                            c1 - c0, sp.pos0 + j == 0);
      }
    }
  });
}

}  // namespace

void RecurrentBlock(const Config& c, const RecurrentWeights& w, int layer, Scratch& s, int64_t T) {
  const int64_t L = c.lru_width;
  float* y = s.wide_a.data();   // [T, L] gelu branch
  float* u = s.wide_b.data();   // [T, L] linear_x, then conv output, then h
  float* gx = s.wide_c.data();  // [T, L] input gate
  float* ga = s.wide_d.data();  // [T, L] recurrence gate

  // gx holds linear_x's output until the gates are computed.
  const MatMulTarget y_x[] = {{&w.linear_y, y, w.linear_y_bias}, {&w.linear_x, gx, w.linear_x_bias}};
  MatMulShared(y_x, s.xn.data(), T, s.kernels);
  s.pool.ParallelFor(T * L, 4096, [&](int64_t i0, int64_t i1, int) { GeluInPlace(y + i0, i1 - i0); });

  Conv1d(w, c.conv_width, L, layer, s.spans, gx, u, s.pool);

  BlockDiagGate(w.input_gate_w, w.input_gate_b, u, T, c.num_heads, c.lru_block_width(), gx, s);
  BlockDiagGate(w.a_gate_w, w.a_gate_b, u, T, c.num_heads, c.lru_block_width(), ga, s);
  RgLruScan(w, L, layer, s.spans, u, gx, ga, s.pool);

  s.pool.ParallelFor(T * L, 4096, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) u[i] *= y[i];
  });
  MatMul(w.linear_out, u, T, s.branch.data(), w.linear_out_bias, s.kernels);
}

}  // namespace rg
