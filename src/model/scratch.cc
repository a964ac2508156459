#include "model/scratch.h"

#include <algorithm>
#include <utility>

namespace rg {

Scratch::Scratch(const Config& c, int64_t rows, ThreadPool& p, const KernelOptions& kernel_options)
    : max_rows(rows), pool(p), kernels(p, kernel_options) {
  const size_t T = size_t(rows), D = size_t(c.width), L = size_t(c.lru_width), M = size_t(c.mlp_width);
  const size_t H = size_t(c.num_heads), h = size_t(c.head_dim);
  const size_t half_rope = size_t(std::max<int64_t>(1, c.rope_dim() / 2));
  x.resize(T * D);
  xn.resize(T * D);
  branch.resize(T * D);
  selected.resize(T * D);
  seqs.reserve(T);
  recurrent_seqs.reserve(T);
  attention_seqs.reserve(T);

  // 64 query rows per attention block: large enough for GEMM speed, small
  // enough that the scores stay a few MiB at the 2048-token window.
  attention.block_rows = std::min<int64_t>(64, std::max<int64_t>(1, rows));
  const size_t keys = size_t(c.attention_window + attention.block_rows);

  // Each block's views, laid out one after another from the arena's start.
  using Views = std::vector<std::pair<float**, size_t>>;
  RgLruScratch& lru = recurrent.rg_lru;
  const Views blocks[] = {
      {{&recurrent.y, T * L}, {&recurrent.x, T * L}, {&recurrent.x_conv, T * L}, {&lru.gate_x, T * L},
       {&lru.gate_a, T * L}, {&lru.multiplier, T * L}},
      {{&attention.q, T * H * h}, {&attention.heads, T * H * h}, {&attention.k, T * h}, {&attention.v, T * h},
       {&attention.rope_cos, T * half_rope}, {&attention.rope_sin, T * half_rope}, {&attention.k_win, keys * h},
       {&attention.vt_win, keys * h}, {&attention.scores, size_t(attention.block_rows) * H * keys}},
      {{&mlp.gate, T * M}, {&mlp.up, T * M}},
  };
  auto padded = [](size_t n) { return (n + 15) / 16 * 16; };  // 64-byte aligned views
  size_t floats = 0;
  for (const Views& views : blocks) {
    size_t n = 0;
    for (const auto& [view, size] : views) n += padded(size);
    floats = std::max(floats, n);
  }
  arena_.Resize(floats * sizeof(float));
  for (const Views& views : blocks) {
    float* at = arena_.data<float>();
    for (const auto& [view, size] : views) *view = at, at += padded(size);
  }

  // The widest input of any product: a block's matrices, or the attention
  // values' key window.
  const int64_t wide = std::max({c.lru_width, c.mlp_width, c.num_heads * c.head_dim});
  // The RG-LRU gates' inputs split into num_heads heads (quantized gates).
  kernels.Reserve(rows, std::max<int64_t>(wide, std::max<int64_t>(c.width, int64_t(keys))), c.num_heads);
}

}  // namespace rg
