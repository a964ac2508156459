// Local multi-query attention, as the reference's LocalAttentionBlock:
//   q = q_proj(x) [H, h];  k, v = k_proj(x), v_proj(x) [h]  (one shared head)
//   RoPE on the first half of q and k (NeoX halves)
//   a query at pos attends to key positions pos-W .. pos (W+1 keys)
//   out = o_proj(concat_heads(softmax(q k / sqrt(h)) v))
// Keys of earlier calls come from the state's KV ring (slot = pos % W); keys
// of this call come from its own rows.
#include <cmath>

#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/vector_ops.h"

namespace rg {
namespace {

// Every (row, head) of the batch in one parallel pass; each row attends to
// its own sequence's keys only.
void Attend(const Config& c, int layer, const float* q, Scratch& s, float* out, int64_t T) {
  const int64_t H = c.num_heads, h = c.head_dim, W = c.attention_window, Dq = H * h;
  const float scale = 1.f / std::sqrt(float(h));
  s.pool.ParallelFor(T * H, 1, [&](int64_t i0, int64_t i1, int thread) {
    float* probs = s.scores.data() + thread * (W + 1);  // [W + 1]
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / H, head = i % H;
      const RowSpan& sp = SpanOfRow(s.spans, t);
      const AttentionState& st = std::get<AttentionState>(sp.state->layers[layer]);
      const int64_t pos = sp.pos0 + (t - sp.row0);
      const int64_t first = pos - W > 0 ? pos - W : 0;  // oldest visible key position
      const float* qv = q + t * Dq + head * h;
      auto key_row = [&](int64_t kpos, const float* rows, const std::vector<float>& ring) {
        return kpos >= sp.pos0 ? rows + (sp.row0 + kpos - sp.pos0) * h : ring.data() + (kpos % W) * h;
      };
      const int64_t n_keys = pos - first + 1;
      for (int64_t kk = 0; kk < n_keys; ++kk) {
        const float* kv = key_row(first + kk, s.k_rows.data(), st.k);
        probs[kk] = Dot(qv, kv, h) * scale;
      }
      Softmax(probs, n_keys);
      float* o = out + t * Dq + head * h;
      for (int64_t d = 0; d < h; ++d) o[d] = 0.f;
      for (int64_t kk = 0; kk < n_keys; ++kk) {
        Axpy(probs[kk], key_row(first + kk, s.v_rows.data(), st.v), o, h);
      }
    }
  });
}

// Keep each sequence's last W keys/values for later calls (after Attend: the
// ring slots it overwrites may still have been read there).
void UpdateKvRings(const Config& c, int layer, Scratch& s) {
  const int64_t h = c.head_dim, W = c.attention_window;
  for (const RowSpan& sp : s.spans) {
    AttentionState& st = std::get<AttentionState>(sp.state->layers[layer]);
    const int64_t keep = sp.n < W ? sp.n : W;
    for (int64_t j = sp.n - keep; j < sp.n; ++j) {
      const int64_t slot = (sp.pos0 + j) % W, t = sp.row0 + j;
      std::copy(s.k_rows.data() + t * h, s.k_rows.data() + (t + 1) * h, st.k.data() + slot * h);
      std::copy(s.v_rows.data() + t * h, s.v_rows.data() + (t + 1) * h, st.v.data() + slot * h);
    }
  }
}

}  // namespace

void AttentionBlock(const Config& c, const AttentionWeights& w, int layer, Scratch& s, int64_t T) {
  const int64_t H = c.num_heads, h = c.head_dim, R = c.rope_dim(), Dq = H * h;
  float* q = s.wide_a.data();    // [T, H*h]
  float* out = s.wide_b.data();  // [T, H*h]
  MatMul(w.q, s.xn.data(), T, q, nullptr, s.pool);
  MatMul(w.k, s.xn.data(), T, s.k_rows.data(), nullptr, s.pool);
  MatMul(w.v, s.xn.data(), T, s.v_rows.data(), nullptr, s.pool);

  // RoPE at each row's absolute position.
  s.pool.ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const RowSpan& sp = SpanOfRow(s.spans, t);
      float* cos = s.rope_cos.data() + t * (R / 2);
      float* sin = s.rope_sin.data() + t * (R / 2);
      RopeSinCos(sp.pos0 + (t - sp.row0), R, c.rope_theta, cos, sin);
      for (int64_t head = 0; head < H; ++head) RopeApply(q + t * Dq + head * h, R, cos, sin);
      RopeApply(s.k_rows.data() + t * h, R, cos, sin);
    }
  });
  Attend(c, layer, q, s, out, T);
  UpdateKvRings(c, layer, s);
  MatMul(w.o, out, T, s.branch.data(), w.o_bias, s.pool);
}

}  // namespace rg
