// The temporal and channel blocks of one residual layer. Each reads the normed
// input s.xn [T, D] and writes its output to s.branch [T, D].
#pragma once

#include "model/scratch.h"
#include "model/state.h"
#include "model/weights.h"

namespace rg {

void RecurrentBlock(const Config& c, const RecurrentWeights& w, int layer, Scratch& s, int64_t T);
void AttentionBlock(const Config& c, const AttentionWeights& w, int layer, Scratch& s, int64_t T);
void MlpBlock(const Config& c, const MlpWeights& w, Scratch& s, int64_t T);

}  // namespace rg
