// The grammar's pushdown automaton, determinized lazily over bytes.
//
// A parse stack is a chain of frames (position, parent): the top frame's
// position is the byte terminal expected next; each lower frame is the rule
// reference to continue after (position + 1) once the rule above completes.
// Frames are interned, so equal stacks share one id and sharing suffixes cost
// nothing. A DFA state is the sorted set of live stacks after some input plus
// an `accept` flag (the root rule may be complete here). States are interned
// too, and Step(state, byte) is computed once and then served from a
// 256-entry row per state, so the token-mask trie walk (token_mask.h) costs one
// table load per trie node in the common case.
//
// Bounds: the grammar checks (grammar.h) make every closure finite; a closure
// larger than kDfaMaxClosure (an extremely ambiguous grammar) or more than
// kDfaMaxStates live states throws rg::Error. The owner bounds memory over a
// long generation with Compact(). Not thread-safe: one per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sampling/grammar/grammar.h"

namespace rg {

inline constexpr size_t kDfaMaxClosure = 100000;  // (position, parent) pairs in one step
inline constexpr size_t kDfaMaxStates = 1 << 20;
inline constexpr size_t kDfaMaxRowStates = 8192;  // states with a cached transition row

class LazyDfa {
 public:
  using StateId = int32_t;
  static constexpr StateId kDead = 0;  // no stack survives: the input is rejected

  explicit LazyDfa(std::shared_ptr<const Grammar> grammar);

  StateId Start() const { return start_; }

  // The state after one more byte (kDead if the byte is rejected).
  StateId Step(StateId s, uint8_t byte) {
    if (size_t(s) < n_row_states_) {
      const int32_t cached = rows_[size_t(s) * 256 + byte];
      if (cached >= 0) return cached;
    }
    return StepSlow(s, byte);
  }

  // True if the input so far is a complete match of the root rule.
  bool CanEnd(StateId s) const { return states_[size_t(s)].accept; }
  // True if some byte can still follow.
  bool CanContinue(StateId s) const { return states_[size_t(s)].end > states_[size_t(s)].begin; }

  // Forgets every state and frame except those of `keep`; returns keep's new
  // id. All other ids become invalid. Bounds memory between tokens.
  StateId Compact(StateId keep);

  size_t num_states() const { return states_.size(); }
  size_t num_frames() const { return frames_.size(); }

  // Debug: the stacks of s, one per line, top first, as rule names.
  std::string Describe(StateId s) const;

 private:
  struct Frame {
    uint32_t pos;     // element index
    uint32_t parent;  // frame id; 0 = bottom of every stack
  };
  struct State {
    uint32_t begin, end;  // top frame ids in tops_[begin, end), sorted
    bool accept;
  };

  StateId StepSlow(StateId s, uint8_t byte);
  void Reset();
  uint32_t InternFrame(uint32_t pos, uint32_t parent);
  // Adds the closure of (pos, parent) to next_tops_ / next_accept_.
  void Expand(uint32_t pos, uint32_t parent);
  void ExpandRule(uint32_t rule, uint32_t parent);
  void RunClosure();
  StateId InternNext();  // interns next_tops_ / next_accept_

  std::shared_ptr<const Grammar> grammar_;
  const GrammarElement* elems_;  // grammar_->elements()

  std::vector<Frame> frames_;                             // [n_frames]; frames_[0] = bottom
  std::unordered_map<uint64_t, uint32_t> frame_ids_;      // (pos << 32 | parent) -> frame id
  std::vector<State> states_;                             // [n_states]; states_[0] = dead
  std::vector<uint32_t> tops_;                            // arena of every state's top frame ids
  std::unordered_multimap<uint64_t, StateId> state_ids_;  // content hash -> state id
  std::vector<int32_t> rows_;  // [n_row_states * 256] cached Step results, -1 = not computed
  size_t n_row_states_ = 0;
  StateId start_ = kDead;

  // Scratch of StepSlow, reused so that warm steps do not allocate.
  std::vector<std::pair<uint32_t, uint32_t>> work_;  // (pos, parent) to expand
  std::unordered_set<uint64_t> visited_;             // (pos, parent) already expanded
  std::vector<uint32_t> next_tops_;
  bool next_accept_ = false;
};

}  // namespace rg
