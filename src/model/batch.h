// How the rows of one Forward call are laid out: each sequence's rows are
// contiguous, and batch row t = row0 + j is that sequence's position pos0 + j.
#pragma once

#include <cstdint>
#include <span>

namespace rg {

// One sequence's rows in the batch, with its state of what is being run: the
// whole State for Forward, one layer's RecurrentState / AttentionState for a
// block (the state the block reads and advances).
template <class LayerState>
struct SeqRows {
  LayerState* state;
  int64_t row0;  // first row of this sequence in the batch
  int64_t n;     // number of rows
  int64_t pos0;  // absolute position of row0
};

// The sequence holding batch row t (seqs are in row order and cover [0, T)).
template <class LayerState>
const SeqRows<LayerState>& SeqOfRow(std::span<const SeqRows<LayerState>> seqs, int64_t t) {
  size_t lo = 0, hi = seqs.size() - 1;
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (seqs[mid].row0 <= t) lo = mid;
    else hi = mid - 1;
  }
  return seqs[lo];
}

}  // namespace rg
