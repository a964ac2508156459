#include "sampling/grammar/matcher.h"

#include <algorithm>

#include "core/error.h"
#include "sampling/grammar/token_mask.h"

namespace rg {

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const TokenTrie> trie)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), dfa_(grammar_) {
  RG_CHECK(trie_ != nullptr, "GrammarMatcher: null token trie");
  state_ = dfa_.Start();
  words_ = TokenMaskWords(trie_->vocab_size());
  depth_states_.resize(trie_->max_depth() + 1);
  cache_bits_.resize(kMatcherMaskCache * words_);
  cache_state_.assign(kMatcherMaskCache, -1);
  cache_used_.assign(kMatcherMaskCache, 0);
  none_.assign(words_, 0);
}

void GrammarMatcher::Reset() {
  state_ = dfa_.Start();
  finished_ = false;
}

const uint64_t* GrammarMatcher::AllowedTokens() {
  if (finished_) return none_.data();
  ++clock_;
  size_t slot = 0;
  for (size_t k = 0; k < kMatcherMaskCache; ++k) {
    if (cache_state_[k] == state_) {
      cache_used_[k] = clock_;
      return cache_bits_.data() + k * words_;
    }
    if (cache_used_[k] < cache_used_[slot]) slot = k;  // least recently used
  }
  uint64_t* bits = cache_bits_.data() + slot * words_;
  cache_state_[slot] = -1;  // in case the walk throws
  ComputeTokenMask(dfa_, state_, *trie_, depth_states_.data(), bits);
  cache_state_[slot] = state_;
  cache_used_[slot] = clock_;
  return bits;
}

bool GrammarMatcher::IsAllowed(int id) {
  if (id < 0 || id >= vocab_size()) return false;
  return (AllowedTokens()[size_t(id) >> 6] >> (id & 63)) & 1;
}

void GrammarMatcher::MaskLogits(float* logits) {
  ApplyTokenMask(AllowedTokens(), vocab_size(), logits);
}

void GrammarMatcher::AcceptToken(int id) {
  RG_CHECK(id >= 0 && id < vocab_size(), "grammar: token id ", id, " outside [0, ", vocab_size(),
           ")");
  RG_CHECK(!finished_, "grammar: token ", id, " after the end token; the output is complete");
  switch (trie_->kind(id)) {
    case TokenKind::kSpecial:
      Fail("grammar: token ", id, " is a special token, never allowed in constrained output");
    case TokenKind::kEnd:
      RG_CHECK(dfa_.CanEnd(state_), "grammar: end token ", id,
               " before the output is complete (the grammar expects more)");
      finished_ = true;
      return;
    case TokenKind::kText: break;
  }
  const std::string_view bytes = trie_->bytes(id);
  RG_CHECK(!bytes.empty(), "grammar: token ", id, " has no text and is never allowed");
  if (!AcceptBytes(bytes)) Fail("grammar: token ", id, " is not allowed in this state");
}

LazyDfa::StateId GrammarMatcher::StateAfter(std::string_view bytes) {
  if (finished_) return bytes.empty() ? state_ : LazyDfa::kDead;
  LazyDfa::StateId s = state_;
  for (char c : bytes) {
    s = dfa_.Step(s, uint8_t(c));
    if (s == LazyDfa::kDead) break;
  }
  return s;
}

bool GrammarMatcher::CanAcceptBytes(std::string_view bytes) {
  return StateAfter(bytes) != LazyDfa::kDead;
}

bool GrammarMatcher::AcceptBytes(std::string_view bytes) {
  const LazyDfa::StateId s = StateAfter(bytes);
  if (s == LazyDfa::kDead) return false;
  state_ = s;
  MaybeCompact();
  return true;
}

void GrammarMatcher::MaybeCompact() {
  if (dfa_.num_states() <= kMatcherCompactStates && dfa_.num_frames() <= kMatcherCompactFrames) {
    return;
  }
  state_ = dfa_.Compact(state_);
  std::fill(cache_state_.begin(), cache_state_.end(), -1);  // state ids were renumbered
}

}  // namespace rg
