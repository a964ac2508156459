#include "model/rg_lru.h"

#include <cmath>

#include "ops/activations.h"
#include "ops/block_diag.h"
#include "ops/quant_matmul.h"
#include "ops/recurrence.h"

namespace rg {
namespace {

constexpr float kC = 8.f;  // the paper's c: a_t = a^(c r_t)

// W_a x + b_a and W_x x + b_x with W block-diagonal [H, b, b]: the two gates
// before their sigmoid, as quantized products of one quantization of x when
// the model has them (RecurrentWeights::a_gate_q), else in f32.
void GateProducts(const Config& c, const RecurrentWeights& w, const float* x, int64_t T, float* r, float* i,
                  KernelContext& k) {
  const int64_t H = c.num_heads, b = c.lru_block_width();
  if (w.a_gate_q.data && w.input_gate_q.data) {
    const MatMulTarget gates[] = {{&w.a_gate_q, r, w.a_gate_b}, {&w.input_gate_q, i, w.input_gate_b}};
    BlockDiagMatMulQuantized(gates, x, T, H, k);
  } else {
    BlockDiagMatMul(w.a_gate_w, x, T, H, b, r, w.a_gate_b, k);
    BlockDiagMatMul(w.input_gate_w, x, T, H, b, i, w.input_gate_b, k);
  }
}

}  // namespace

// -c · softplus(Λ) · r_t is bitwise equal to the reference's (-c · r_t) ·
// softplus(Λ): scaling by 8 is exact.
void RgLruLogDecay(const float* lambda, int64_t L, float* out) {
  for (int64_t i = 0; i < L; ++i) {
    const float x = lambda[i];
    const float softplus = x > 20.f ? x : std::log1p(std::exp(x));  // torch: beta 1, threshold 20
    out[i] = -kC * softplus;
  }
}

void RgLru(const Config& c, const RecurrentWeights& w, std::span<const SeqRows<RecurrentState>> seqs, float* x,
           int64_t T, const RgLruScratch& s, KernelContext& k) {
  const int64_t L = c.lru_width;
  ThreadPool& pool = k.pool();
  float* a = s.gate_a;      // [T, L] r_t, then log a_t, then a_t
  float* m = s.multiplier;  // [T, L] a_t², then sqrt(1 - a_t²)
  float* ix = s.gate_x;     // [T, L] i_t, then i_t ⊙ x_t

  GateProducts(c, w, x, T, a, ix, k);

  // Row by row, in one hand-off (each step elementwise, so the same values as
  // whole-array passes): r_t = σ(.), i_t = σ(.); log a_t = log_decay ⊙ r_t;
  // a_t = exp(log a_t), a_t² = exp(2 log a_t); i_t ⊙ x_t and its multiplier
  // sqrt(1 - a_t²); at pos 0 the reset: a = 0, multiplier 1.
  pool.ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const SeqRows<RecurrentState>& sq = SeqOfRow(seqs, t);
      const bool reset = sq.pos0 + (t - sq.row0) == 0;
      float* a_t = a + t * L;
      float* m_t = m + t * L;
      float* ix_t = ix + t * L;
      const float* x_t = x + t * L;
      SigmoidInPlace(a_t, L);
      SigmoidInPlace(ix_t, L);
      for (int64_t ch = 0; ch < L; ++ch) {
        const float log_a = w.log_decay[ch] * a_t[ch];
        a_t[ch] = log_a;
        m_t[ch] = 2.f * log_a;
      }
      ExpInPlace(a_t, L);
      ExpInPlace(m_t, L);
      for (int64_t ch = 0; ch < L; ++ch) {
        ix_t[ch] = x_t[ch] * ix_t[ch];
        m_t[ch] = reset ? 1.f : std::sqrt(1.f - m_t[ch]);
        if (reset) a_t[ch] = 0.f;
      }
    }
  });

  // h_t = a_t ⊙ h_{t-1} + sqrt(1 - a_t²) ⊙ (i_t ⊙ x_t), written over x.
  // Channels are independent: one parallel pass over them for the whole
  // batch, each sequence's rows in order.
  pool.ParallelFor(L, 64, [&](int64_t c0, int64_t c1, int) {
    for (const SeqRows<RecurrentState>& sq : seqs) {
      float* h = sq.state->h.data();  // [L]
      for (int64_t j = 0; j < sq.n; ++j) {
        const int64_t at = (sq.row0 + j) * L + c0;
        DiagonalRecurrenceStep(a + at, m + at, ix + at, h + c0, x + at, c1 - c0);
      }
    }
  });
}

}  // namespace rg
