// Per-session work memory, allocated once for up to `max_rows` token rows per
// Forward call, so decoding allocates nothing per token. The residual stream
// buffers live across blocks; each block's own buffers are named views of one
// arena (the blocks run one at a time, so their views share it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/threads.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/rg_lru.h"
#include "model/state.h"
#include "ops/kernel_context.h"

namespace rg {

// Called with each named intermediate [rows, cols] when set (debugging and
// reference comparison); names follow the fixtures: "embed", "block.3", "final_norm".
using Tracer = std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

// model/recurrent_block.cc
struct RecurrentScratch {
  float* y;       // [T, L] gelu_tanh(linear_y(x))
  float* x;       // [T, L] linear_x(x)
  float* x_conv;  // [T, L] conv1d output, then the RG-LRU output h, then h * y
  RgLruScratch rg_lru;
};

// model/attention_block.cc
struct AttentionScratch {
  float* q;         // [T, H*h] queries after RoPE
  float* heads;     // [T, H*h] attention output, heads concatenated
  float* k;         // [T, h] this call's keys after RoPE
  float* v;         // [T, h] this call's values
  float* rope_cos;  // [T, R/2]
  float* rope_sin;  // [T, R/2]
  int64_t block_rows;  // query rows per attention block
  float* k_win;     // [W + block_rows, h] keys visible to a block, by position
  float* vt_win;    // [h, W + block_rows] their values, transposed
  float* scores;    // [block_rows * H, W + block_rows] scores, then probabilities
};

// model/mlp_block.cc
struct MlpScratch {
  float* gate;  // [T, M] gate(x), then gelu_tanh(gate(x)) * up(x)
  float* up;    // [T, M]
};

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
  std::vector<float> selected;  // [T, D] final-normed rows that need logits

  RecurrentScratch recurrent;
  AttentionScratch attention;
  MlpScratch mlp;

  // The batch of one Forward call: one entry per sequence, and the same rows
  // with the sequences' state of the layer being run (capacity max_rows each).
  std::vector<SeqRows<State>> seqs;
  std::vector<SeqRows<RecurrentState>> recurrent_seqs;
  std::vector<SeqRows<AttentionState>> attention_seqs;

 private:
  AlignedBuffer arena_;  // the blocks' views
};

}  // namespace rg
