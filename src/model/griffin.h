// The Griffin forward pass (RecurrentGemma): one call advances one or more
// sequences by a chunk of tokens each.
//   prefill  = one sequence, T tokens (matrix-matrix)
//   decode   = one sequence, 1 token
//   batched  = several sequences, 1 (or more) tokens each, one pass over the weights
#pragma once

#include <cstdint>
#include <span>

#include "model/scratch.h"
#include "model/state.h"
#include "model/weights.h"

namespace rg {

enum class LogitsWanted { kNone, kLast, kAll };

struct SeqChunk {
  State* state;            // continues at state->pos; advanced by n
  const int32_t* tokens;   // [n]
  int64_t n;
  LogitsWanted logits = LogitsWanted::kLast;
};

// Runs the chunks (their rows concatenated: sum of n <= scratch.max_rows) and
// writes soft-capped logits into `logits` [rows_out, V], rows in chunk order:
// n rows for kAll, 1 for kLast, 0 for kNone. Throws rg::Error for token ids
// outside the vocabulary.
void Forward(const Weights& w, std::span<const SeqChunk> chunks, Scratch& s, float* logits);

// Rows of logits Forward writes for these chunks.
int64_t LogitRows(std::span<const SeqChunk> chunks);

}  // namespace rg
