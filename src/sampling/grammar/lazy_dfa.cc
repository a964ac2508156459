#include "sampling/grammar/lazy_dfa.h"

#include <algorithm>

#include "core/error.h"

namespace rg {

namespace {

uint64_t HashState(const std::vector<uint32_t>& tops, bool accept) {
  uint64_t h = accept ? 0x9E3779B97F4A7C15ull : 0x0123456789ABCDEFull;
  for (uint32_t t : tops) h = (h ^ t) * 0x100000001B3ull + (h >> 29);
  return h;
}

}  // namespace

LazyDfa::LazyDfa(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  RG_CHECK(grammar_ != nullptr, "LazyDfa: null grammar");
  elems_ = grammar_->elements().data();
  Reset();
}

void LazyDfa::Reset() {
  frames_.assign(1, Frame{0, 0});
  frame_ids_.clear();
  states_.assign(1, State{0, 0, false});
  tops_.clear();
  state_ids_.clear();
  rows_.assign(256, kDead);  // the dead state's row: every byte stays dead
  n_row_states_ = 1;
  // The start state: the closure of the root rule's alternatives.
  next_tops_.clear();
  visited_.clear();
  next_accept_ = false;
  ExpandRule(grammar_->root(), 0);
  RunClosure();
  start_ = InternNext();
}

uint32_t LazyDfa::InternFrame(uint32_t pos, uint32_t parent) {
  auto [it, inserted] = frame_ids_.emplace(uint64_t(pos) << 32 | parent, uint32_t(frames_.size()));
  if (inserted) frames_.push_back(Frame{pos, parent});
  return it->second;
}

void LazyDfa::Expand(uint32_t pos, uint32_t parent) { work_.push_back({pos, parent}); }

void LazyDfa::ExpandRule(uint32_t rule, uint32_t parent) {
  for (uint32_t alt : grammar_->rules()[rule].alts) Expand(alt, parent);
}

void LazyDfa::RunClosure() {
  while (!work_.empty()) {
    const auto [pos, parent] = work_.back();
    work_.pop_back();
    if (!visited_.insert(uint64_t(pos) << 32 | parent).second) continue;
    if (visited_.size() > kDfaMaxClosure) {
      work_.clear();
      Fail("grammar: one step expands to more than ", kDfaMaxClosure,
           " parse positions (the grammar is too ambiguous); simplify it");
    }
    const GrammarElement& e = elems_[pos];
    switch (e.kind) {
      case GrammarElemKind::kBytes: next_tops_.push_back(InternFrame(pos, parent)); break;
      case GrammarElemKind::kEnd:
        if (parent == 0) {
          next_accept_ = true;
        } else {
          const Frame f = frames_[parent];
          Expand(f.pos + 1, f.parent);
        }
        break;
      case GrammarElemKind::kRule: {
        // A reference in tail position returns straight to our parent: no
        // frame, so x* (S ::= x S | "") keeps the stack flat.
        const bool tail = elems_[pos + 1].kind == GrammarElemKind::kEnd;
        ExpandRule(e.arg, tail ? parent : InternFrame(pos, parent));
        break;
      }
    }
  }
}

LazyDfa::StateId LazyDfa::InternNext() {
  std::sort(next_tops_.begin(), next_tops_.end());
  next_tops_.erase(std::unique(next_tops_.begin(), next_tops_.end()), next_tops_.end());
  if (next_tops_.empty() && !next_accept_) return kDead;
  const uint64_t h = HashState(next_tops_, next_accept_);
  for (auto [it, end] = state_ids_.equal_range(h); it != end; ++it) {
    const State& s = states_[size_t(it->second)];
    if (s.accept == next_accept_ && s.end - s.begin == next_tops_.size() &&
        std::equal(next_tops_.begin(), next_tops_.end(), tops_.begin() + s.begin)) {
      return it->second;
    }
  }
  if (states_.size() >= kDfaMaxStates) {
    Fail("grammar: more than ", kDfaMaxStates, " distinct parser states; simplify the grammar");
  }
  const StateId id = StateId(states_.size());
  states_.push_back(
      State{uint32_t(tops_.size()), uint32_t(tops_.size() + next_tops_.size()), next_accept_});
  tops_.insert(tops_.end(), next_tops_.begin(), next_tops_.end());
  state_ids_.emplace(h, id);
  if (n_row_states_ < kDfaMaxRowStates) {
    rows_.resize(rows_.size() + 256, -1);
    ++n_row_states_;
  }
  return id;
}

LazyDfa::StateId LazyDfa::StepSlow(StateId s, uint8_t byte) {
  next_tops_.clear();
  visited_.clear();
  next_accept_ = false;
  const State st = states_[size_t(s)];
  for (uint32_t i = st.begin; i < st.end; ++i) {
    const Frame f = frames_[tops_[i]];
    if (grammar_->byte_set(elems_[f.pos].arg).Test(byte)) Expand(f.pos + 1, f.parent);
  }
  RunClosure();
  const StateId next = InternNext();
  if (size_t(s) < n_row_states_) rows_[size_t(s) * 256 + byte] = next;
  return next;
}

LazyDfa::StateId LazyDfa::Compact(StateId keep) {
  // Each stack of `keep` as positions, top first.
  std::vector<std::vector<uint32_t>> stacks;
  const State st = states_[size_t(keep)];
  for (uint32_t i = st.begin; i < st.end; ++i) {
    std::vector<uint32_t>& chain = stacks.emplace_back();
    for (uint32_t f = tops_[i]; f != 0; f = frames_[f].parent) chain.push_back(frames_[f].pos);
  }
  Reset();
  next_tops_.clear();
  for (const std::vector<uint32_t>& chain : stacks) {
    uint32_t parent = 0;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) parent = InternFrame(*it, parent);
    next_tops_.push_back(parent);
  }
  next_accept_ = st.accept;
  return InternNext();
}

std::string LazyDfa::Describe(StateId s) const {
  const auto rule_of = [&](uint32_t pos) {
    while (elems_[pos].kind != GrammarElemKind::kEnd) ++pos;
    return grammar_->rules()[elems_[pos].arg].name;
  };
  const State st = states_[size_t(s)];
  std::string out = st.accept ? "(can end)\n" : "";
  for (uint32_t i = st.begin; i < st.end; ++i) {
    for (uint32_t f = tops_[i]; f != 0; f = frames_[f].parent) {
      out += rule_of(frames_[f].pos) + "@" + std::to_string(frames_[f].pos);
      out += frames_[f].parent ? " <- " : "\n";
    }
  }
  return out;
}

}  // namespace rg
