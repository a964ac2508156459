// The model, read top to bottom like the paper:
//   x = E[tok] * bf16(sqrt(D))
//   for each layer: x = x + temporal(norm(x)); x = x + mlp(norm(x))
//   logits = softcap(final_norm(x) @ E^T)
#include "model/griffin.h"

#include "core/error.h"
#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace rg {
namespace {

void NormRows(const float* x, const float* scale, int64_t T, int64_t D, float eps, float* out,
              ThreadPool& pool) {
  pool.ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) RmsNorm(x + t * D, scale, D, eps, out + t * D);
  });
}

// The batch's rows with each sequence's state of `layer` (kept in `out`, whose
// capacity Scratch reserved).
template <class LayerState>
std::span<const SeqRows<LayerState>> LayerSeqs(const std::vector<SeqRows<State>>& seqs, int layer,
                                               std::vector<SeqRows<LayerState>>& out) {
  out.clear();
  for (const SeqRows<State>& sq : seqs)
    out.push_back({&std::get<LayerState>(sq.state->layers[layer]), sq.row0, sq.n, sq.pos0});
  return out;
}

void Trace(Scratch& s, const std::string& name, const float* data, int64_t rows, int64_t cols) {
  if (s.tracer) s.tracer(name, data, rows, cols);
}

}  // namespace

int64_t LogitRows(std::span<const SeqChunk> chunks) {
  int64_t rows = 0;
  for (const SeqChunk& ch : chunks)
    rows += ch.logits == LogitsWanted::kAll ? ch.n : ch.logits == LogitsWanted::kLast ? 1 : 0;
  return rows;
}

void Forward(const Weights& w, std::span<const SeqChunk> chunks, Scratch& s, float* logits) {
  const Config& c = w.config;
  const int64_t D = c.width;

  // Lay out the batch: each sequence's rows are contiguous.
  s.seqs.clear();
  int64_t T = 0;
  for (const SeqChunk& ch : chunks) {
    RG_CHECK(ch.n > 0, "Forward: empty chunk");
    RG_CHECK(T + ch.n <= s.max_rows, "Forward: ", T + ch.n, " rows exceed the scratch capacity ",
             s.max_rows);
    s.seqs.push_back({ch.state, T, ch.n, ch.state->pos});
    for (int64_t j = 0; j < ch.n; ++j) {
      const int32_t tok = ch.tokens[j];
      RG_CHECK(tok >= 0 && tok < c.vocab_size, "token id ", tok, " at position ",
               ch.state->pos + j, " is outside the vocabulary [0, ", c.vocab_size, ")");
    }
    T += ch.n;
  }

  // Embedding, scaled by sqrt(D) rounded to bf16 as the reference does.
  s.pool.ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t row = t;
      const SeqChunk* ch = chunks.data();
      while (row >= ch->n) row -= (ch++)->n;
      float* xt = s.x.data() + t * D;
      ReadRow(w.embed, ch->tokens[row], xt);
      for (int64_t d = 0; d < D; ++d) xt[d] *= w.embed_scale;
    }
  });
  Trace(s, "embed", s.x.data(), T, D);

  for (int i = 0; i < int(c.num_layers()); ++i) {
    const LayerWeights& lw = w.layers[i];
    NormRows(s.x.data(), lw.temporal_norm, T, D, c.rms_norm_eps, s.xn.data(), s.pool);
    if (auto* r = std::get_if<RecurrentWeights>(&lw.temporal)) {
      RecurrentBlock(c, *r, LayerSeqs(s.seqs, i, s.recurrent_seqs), s.xn.data(), s.branch.data(), T, s.recurrent,
                     s.kernels);
    } else {
      AttentionBlock(c, std::get<AttentionWeights>(lw.temporal), LayerSeqs(s.seqs, i, s.attention_seqs),
                     s.xn.data(), s.branch.data(), T, s.attention, s.kernels);
    }
    AddInPlace(s.x.data(), s.branch.data(), T * D);

    NormRows(s.x.data(), lw.channel_norm, T, D, c.rms_norm_eps, s.xn.data(), s.pool);
    MlpBlock(c, lw.mlp, s.xn.data(), s.branch.data(), T, s.mlp, s.kernels);
    AddInPlace(s.x.data(), s.branch.data(), T * D);
    if (s.tracer) Trace(s, "block." + std::to_string(i), s.x.data(), T, D);
  }

  if (s.tracer) {
    NormRows(s.x.data(), w.final_norm, T, D, c.rms_norm_eps, s.xn.data(), s.pool);
    Trace(s, "final_norm", s.xn.data(), T, D);
  }

  // Final norm of the rows that need logits, gathered contiguously, then one
  // pass over the output head for all of them.
  int64_t n_sel = 0;
  for (size_t k = 0; k < chunks.size(); ++k) {
    const SeqRows<State>& sq = s.seqs[k];
    int64_t first = 0;
    if (chunks[k].logits == LogitsWanted::kNone) continue;
    if (chunks[k].logits == LogitsWanted::kLast) first = sq.n - 1;
    for (int64_t j = first; j < sq.n; ++j, ++n_sel)
      RmsNorm(s.x.data() + (sq.row0 + j) * D, w.final_norm, D, c.rms_norm_eps, s.selected.data() + n_sel * D);
  }
  if (n_sel > 0) {
    MatMul(w.lm_head, s.selected.data(), n_sel, logits, nullptr, s.kernels);
    s.pool.ParallelFor(n_sel, 1, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) SoftCap(logits + r * c.vocab_size, c.vocab_size, c.logits_soft_cap);
    });
  }

  for (const SeqRows<State>& sq : s.seqs) sq.state->pos += sq.n;
}

}  // namespace rg
