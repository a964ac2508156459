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

// Rows of a sequence attend in blocks of s.block_rows: the keys visible to a
// block (positions first-W .. last) are gathered in position order, and the
// block's scores and weighted sums are two f32 matrix products over them
// (all heads share the one key/value head):
//   S = Q_blk [rows*H, h] . K_win^T      -> [rows*H, n]
//   P = softmax over each row's own window (zero outside it)
//   O = P . V_win                        -> [rows*H, h]
// Keys outside a row's window cost wasted multiply-adds (at most the block's
// own triangle, block_rows of W + block_rows), but the products run at GEMM speed.
void AttendSequence(const Config& c, const SeqRows<AttentionState>& sq, const AttentionScratch& s,
                    KernelContext& k) {
  const int64_t H = c.num_heads, h = c.head_dim, W = c.attention_window, Dq = H * h;
  const float scale = 1.f / std::sqrt(float(h));
  const AttentionState& st = *sq.state;
  for (int64_t j0 = 0; j0 < sq.n; j0 += s.block_rows) {
    const int64_t j1 = std::min(sq.n, j0 + s.block_rows), rows = j1 - j0;
    const int64_t p_lo = std::max<int64_t>(0, sq.pos0 + j0 - W), p_hi = sq.pos0 + j1 - 1;
    const int64_t n = p_hi - p_lo + 1;  // keys of the block, <= W + block_rows
    float* k_win = s.k_win;    // [n, h]
    float* vt_win = s.vt_win;  // [h, n]
    k.pool().ParallelFor(n, 64, [&](int64_t k0, int64_t k1, int) {
      for (int64_t key = k0; key < k1; ++key) {
        const int64_t p = p_lo + key;
        const bool own = p >= sq.pos0;  // this call's row, else the ring (slot = p % W)
        const float* kr = own ? s.k + (sq.row0 + p - sq.pos0) * h : st.k.data() + (p % W) * h;
        const float* vr = own ? s.v + (sq.row0 + p - sq.pos0) * h : st.v.data() + (p % W) * h;
        std::copy(kr, kr + h, k_win + key * h);
        for (int64_t d = 0; d < h; ++d) vt_win[d * n + key] = vr[d];
      }
    });
    float* scores = s.scores;                        // [rows*H, n]
    const float* q_blk = s.q + (sq.row0 + j0) * Dq;  // [rows*H, h]
    MatMul(WeightMatrix{WeightFormat::F32, n, h, k_win}, q_blk, rows * H, scores, nullptr, k);
    k.pool().ParallelFor(rows * H, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t pos = sq.pos0 + j0 + i / H;
        const int64_t lo = std::max<int64_t>(0, pos - W) - p_lo, hi = pos - p_lo;  // [lo, hi] visible
        float* row = scores + i * n;
        for (int64_t k = lo; k <= hi; ++k) row[k] *= scale;
        Softmax(row + lo, hi - lo + 1);
        std::fill(row, row + lo, 0.f);
        std::fill(row + hi + 1, row + n, 0.f);
      }
    });
    MatMul(WeightMatrix{WeightFormat::F32, h, n, vt_win}, scores, rows * H, s.heads + (sq.row0 + j0) * Dq, nullptr,
           k);
  }
}

// Keep each sequence's last W keys/values for later calls (after AttendSequence: the
// ring slots it overwrites may still have been read there).
void UpdateKvRings(const Config& c, std::span<const SeqRows<AttentionState>> seqs, const AttentionScratch& s) {
  const int64_t h = c.head_dim, W = c.attention_window;
  for (const SeqRows<AttentionState>& sq : seqs) {
    AttentionState& st = *sq.state;
    const int64_t keep = sq.n < W ? sq.n : W;
    for (int64_t j = sq.n - keep; j < sq.n; ++j) {
      const int64_t slot = (sq.pos0 + j) % W, t = sq.row0 + j;
      std::copy(s.k + t * h, s.k + (t + 1) * h, st.k.data() + slot * h);
      std::copy(s.v + t * h, s.v + (t + 1) * h, st.v.data() + slot * h);
    }
  }
}

}  // namespace

void AttentionBlock(const Config& c, const AttentionWeights& w, std::span<const SeqRows<AttentionState>> seqs,
                    const float* xn, float* out, int64_t T, const AttentionScratch& s, KernelContext& k) {
  const int64_t H = c.num_heads, h = c.head_dim, R = c.rope_dim(), Dq = H * h;
  const MatMulTarget qkv[] = {{&w.q, s.q, nullptr}, {&w.k, s.k, nullptr}, {&w.v, s.v, nullptr}};
  MatMulShared(qkv, xn, T, k);

  // RoPE at each row's absolute position.
  k.pool().ParallelFor(T, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const SeqRows<AttentionState>& sq = SeqOfRow(seqs, t);
      float* cos = s.rope_cos + t * (R / 2);
      float* sin = s.rope_sin + t * (R / 2);
      RopeSinCos(sq.pos0 + (t - sq.row0), R, c.rope_theta, cos, sin);
      for (int64_t head = 0; head < H; ++head) RopeApply(s.q + t * Dq + head * h, R, cos, sin);
      RopeApply(s.k + t * h, R, cos, sin);
    }
  });
  for (const SeqRows<AttentionState>& sq : seqs) AttendSequence(c, sq, s, k);
  UpdateKvRings(c, seqs, s);
  MatMul(w.o, s.heads, T, out, w.o_bias, k);
}

}  // namespace rg
