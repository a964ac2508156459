// Per-session work buffers, allocated once for up to `max_rows` token rows per
// Forward call, so decoding allocates nothing per token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/threads.h"
#include "model/config.h"
#include "ops/kernel_context.h"

namespace rg {

class State;

// Called with each named intermediate [rows, cols] when set (debugging and
// reference comparison); names follow the fixtures: "embed", "block.3", "final_norm".
using Tracer = std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

// One sequence's rows within a Forward call: row i of the span is position
// state->pos + i (state->pos is read on entry and advanced by n on return).
struct RowSpan {
  State* state;
  int64_t row0;  // first row of this sequence in the batch
  int64_t n;     // number of rows
  int64_t pos0;  // absolute position of row0
};

// The span holding batch row t (spans are in row order and cover [0, T)).
inline const RowSpan& SpanOfRow(const std::vector<RowSpan>& spans, int64_t t) {
  size_t lo = 0, hi = spans.size() - 1;
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (spans[mid].row0 <= t) lo = mid;
    else hi = mid - 1;
  }
  return spans[lo];
}

class Scratch {
 public:
  Scratch(const Config& c, int64_t max_rows, ThreadPool& pool, const KernelOptions& kernel_options = {});

  int64_t max_rows;
  ThreadPool& pool;
  KernelContext kernels;  // settings and work memory of the matrix products
  Tracer tracer;  // empty = no tracing

  std::vector<float> x;       // [T, D] residual stream
  std::vector<float> xn;      // [T, D] normed block input
  std::vector<float> branch;  // [T, D] block output before the residual add
  std::vector<float> wide_a;  // [T, max(L, M, H*h)]
  std::vector<float> wide_b;  // [T, max(L, M, H*h)]
  std::vector<float> wide_c;  // [T, L]
  std::vector<float> wide_d;  // [T, L]
  std::vector<float> head_in;   // [H, T, b] RG-LRU gate inputs, gathered by head
  std::vector<float> head_out;  // [H, T, b]
  std::vector<float> k_rows;    // [T, h]
  std::vector<float> v_rows;    // [T, h]
  std::vector<float> rope_cos;  // [T, R/2]
  std::vector<float> rope_sin;  // [T, R/2]
  int64_t attn_rows;            // rows per attention block (model/attention_block.cc)
  std::vector<float> k_win;     // [W + attn_rows, h] keys visible to a block, by position
  std::vector<float> vt_win;    // [h, W + attn_rows] their values, transposed
  std::vector<float> attn_scores;  // [attn_rows * H, W + attn_rows] scores, then probabilities
  std::vector<float> selected;  // [T, D] final-normed rows that need logits
  std::vector<RowSpan> spans;   // one per sequence in the batch
};

}  // namespace rg
