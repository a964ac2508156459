// The Real-Gated Linear Recurrent Unit (RG-LRU) of Griffin (De et al. 2024,
// "Griffin: Mixing Gated Linear Recurrences with Local Attention", §2.4), as
// the reference computes it (google-deepmind/recurrentgemma, torch/layers.py
// RGLRU and rnn_scan). Over the conv output x_t of every channel:
//   r_t = σ(W_a x_t + b_a)                       recurrence gate
//   i_t = σ(W_x x_t + b_x)                       input gate
//   log a_t = -c · softplus(Λ) · r_t,  c = 8     (the paper's a = σ(-Λ), a_t = a^(c r_t))
//   a_t = exp(log a_t),  a_t² = exp(2 log a_t)   (the reference's; not a_t · a_t)
//   h_t = a_t ⊙ h_{t-1} + sqrt(1 - a_t²) ⊙ (i_t ⊙ x_t)
//   reset at a sequence's first position (pos 0): a_0 = 0 and the
//   multiplier is 1, so h_0 = i_0 ⊙ x_0
// W_a and W_x are block-diagonal: H blocks of b × b (b = L / H). h is carried
// in f32 in the sequence's RecurrentState.
#pragma once

#include <cstdint>
#include <span>

#include "model/batch.h"
#include "model/config.h"
#include "model/state.h"
#include "model/weights.h"
#include "ops/kernel_context.h"

namespace rg {

// out[i] = -c · softplus(Λ[i]): the per-channel log decay that, times r_t, is
// log a_t. The loader derives it once from the stored Λ
// (temporal_block.rg_lru.recurrent_param) into RecurrentWeights::log_decay.
void RgLruLogDecay(const float* lambda, int64_t L, float* out);

// Work memory of one RgLru call: views of the session's arena
// (model/scratch.h), each [T, L].
struct RgLruScratch {
  float* gate_x;      // i_t, then i_t ⊙ x_t
  float* gate_a;      // r_t, then log a_t, then a_t
  float* multiplier;  // a_t², then sqrt(1 - a_t²)
};

// x [T, L]: the conv output of every row on entry, h_t on return. Reads and
// advances h of every sequence in seqs.
void RgLru(const Config& c, const RecurrentWeights& w, std::span<const SeqRows<RecurrentState>> seqs, float* x,
           int64_t T, const RgLruScratch& s, KernelContext& k);

}  // namespace rg
