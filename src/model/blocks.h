// The temporal and channel blocks of one residual layer. Each reads the normed
// input xn [T, D], writes its output to out [T, D], and works in its own views
// of the session's scratch. The temporal blocks read and advance the state of
// the layer of every sequence in the batch (seqs: which rows are whose).
#pragma once

#include <cstdint>
#include <span>

#include "model/batch.h"
#include "model/scratch.h"
#include "model/state.h"
#include "model/weights.h"
#include "ops/kernel_context.h"

namespace rg {

void RecurrentBlock(const Config& c, const RecurrentWeights& w, std::span<const SeqRows<RecurrentState>> seqs,
                    const float* xn, float* out, int64_t T, const RecurrentScratch& s, KernelContext& k);
void AttentionBlock(const Config& c, const AttentionWeights& w, std::span<const SeqRows<AttentionState>> seqs,
                    const float* xn, float* out, int64_t T, const AttentionScratch& s, KernelContext& k);
void MlpBlock(const Config& c, const MlpWeights& w, const float* xn, float* out, int64_t T, const MlpScratch& s,
              KernelContext& k);

}  // namespace rg
