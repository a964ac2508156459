// Local multi-query attention, as the reference's LocalAttentionBlock:
//   q = q_proj(x) [H, h];  k, v = k_proj(x), v_proj(x) [h]  (one shared head)
//   RoPE on the first half of q and k (NeoX halves)
//   a query at pos attends to key positions pos-W .. pos (W+1 keys)
//   out = o_proj(concat_heads(softmax(q k / sqrt(h)) v))
// Keys of earlier calls come from the state's KV ring (slot = pos % W); keys
// of this call come from its own rows.
#include <algorithm>
#include <cmath>

#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace rg {
namespace {

// Rows of a sequence attend in blocks of s.attn_rows: the keys visible to a
// block (positions first-W .. last) are gathered in position order, and the
// block's scores and weighted sums are two f32 matrix products over them
// (all heads share the one key/value head):
//   S = Q_blk [rows*H, h] . K_win^T      -> [rows*H, n]
//   P = softmax over each row's own window (zero outside it)
//   O = P . V_win                        -> [rows*H, h]
// Keys outside a row's window cost wasted multiply-adds (at most the block's
// own triangle, attn_rows of W + attn_rows), but the products run at GEMM speed.
void AttendSequence(const Config& c, const RowSpan& sp, const float* q, const AttentionState& st,
                    Scratch& s, float* out) {
  const int64_t H = c.num_heads, h = c.head_dim, W = c.attention_window, Dq = H * h;
  const float scale = 1.f / std::sqrt(float(h));
  for (int64_t j0 = 0; j0 < sp.n; j0 += s.attn_rows) {
    const int64_t j1 = std::min(sp.n, j0 + s.attn_rows), rows = j1 - j0;
    const int64_t p_lo = std::max<int64_t>(0, sp.pos0 + j0 - W), p_hi = sp.pos0 + j1 - 1;
    const int64_t n = p_hi - p_lo + 1;  // keys of the block, <= W + attn_rows
    float* k_win = s.k_win.data();      // [n, h]
    float* vt_win = s.vt_win.data();    // [h, n]
    s.pool.ParallelFor(n, 64, [&](int64_t k0, int64_t k1, int) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t p = p_lo + k;
        const bool own = p >= sp.pos0;  // this call's row, else the ring (slot = p % W)
        const float* kr = own ? s.k_rows.data() + (sp.row0 + p - sp.pos0) * h : st.k.data() + (p % W) * h;
        const float* vr = own ? s.v_rows.data() + (sp.row0 + p - sp.pos0) * h : st.v.data() + (p % W) * h;
        std::copy(kr, kr + h, k_win + k * h);
        for (int64_t d = 0; d < h; ++d) vt_win[d * n + k] = vr[d];
      }
    });
    float* scores = s.attn_scores.data();  // [rows*H, n]
    const float* q_blk = q + (sp.row0 + j0) * Dq;  // [rows*H, h]
    MatMul(WeightMatrix{WeightFormat::F32, n, h, k_win}, q_blk, rows * H, scores, nullptr, s.kernels);
    s.pool.ParallelFor(rows * H, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t pos = sp.pos0 + j0 + i / H;
        const int64_t lo = std::max<int64_t>(0, pos - W) - p_lo, hi = pos - p_lo;  // [lo, hi] visible
        float* row = scores + i * n;
        for (int64_t k = lo; k <= hi; ++k) row[k] *= scale;
        Softmax(row + lo, hi - lo + 1);
        std::fill(row, row + lo, 0.f);
        std::fill(row + hi + 1, row + n, 0.f);
      }
    });
    MatMul(WeightMatrix{WeightFormat::F32, h, n, vt_win}, scores, rows * H, out + (sp.row0 + j0) * Dq, nullptr,
           s.kernels);
  }
}

// Keep each sequence's last W keys/values for later calls (after AttendSequence: the
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
  const MatMulTarget qkv[] = {{&w.q, q, nullptr}, {&w.k, s.k_rows.data(), nullptr}, {&w.v, s.v_rows.data(), nullptr}};
  MatMulShared(qkv, s.xn.data(), T, s.kernels);

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
  for (const RowSpan& sp : s.spans)
    AttendSequence(c, sp, q, std::get<AttentionState>(sp.state->layers[layer]), s, out);
  UpdateKvRings(c, layer, s);
  MatMul(w.o, out, T, s.branch.data(), w.o_bias, s.kernels);
}

}  // namespace rg
