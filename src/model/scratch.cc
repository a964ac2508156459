#include "model/scratch.h"

#include <algorithm>

namespace rg {

Scratch::Scratch(const Config& c, int64_t rows, ThreadPool& p, const KernelOptions& kernel_options)
    : max_rows(rows), pool(p), kernels(p, kernel_options) {
  const size_t T = size_t(rows);
  const size_t wide = size_t(std::max({c.lru_width, c.mlp_width, c.num_heads * c.head_dim}));
  x.resize(T * c.width);
  xn.resize(T * c.width);
  branch.resize(T * c.width);
  wide_a.resize(T * wide);
  wide_b.resize(T * wide);
  wide_c.resize(T * c.lru_width);
  wide_d.resize(T * c.lru_width);
  head_in.resize(T * c.lru_width);
  head_out.resize(T * c.lru_width);
  k_rows.resize(T * c.head_dim);
  v_rows.resize(T * c.head_dim);
  rope_cos.resize(T * std::max<int64_t>(1, c.rope_dim() / 2));
  rope_sin.resize(T * std::max<int64_t>(1, c.rope_dim() / 2));
  // 64 query rows per attention block: large enough for GEMM speed, small
  // enough that the scores stay a few MiB at the 2048-token window.
  attn_rows = std::min<int64_t>(64, std::max<int64_t>(1, rows));
  const size_t keys = size_t(c.attention_window + attn_rows);
  k_win.resize(keys * c.head_dim);
  vt_win.resize(keys * c.head_dim);
  attn_scores.resize(size_t(attn_rows * c.num_heads) * keys);
  selected.resize(T * c.width);
  spans.reserve(T);
  // The widest input of any product: a block's matrices, or the attention
  // values' key window.
  kernels.Reserve(rows, std::max<int64_t>(int64_t(wide), std::max<int64_t>(c.width, int64_t(keys))));
}

}  // namespace rg
