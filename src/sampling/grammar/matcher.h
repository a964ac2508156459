// GrammarMatcher: the per-sequence state of constrained decoding.
//
// Shared, immutable, built once:
//   std::shared_ptr<const Grammar>   from ParseGbnf / CompileJsonSchema
//   std::shared_ptr<const TokenTrie> from the tokenizer's TokenVocab, at load
// Per sequence: one GrammarMatcher. In every sampler step:
//   matcher.MaskLogits(logits);        // disallowed tokens -> -inf
//   int id = sampler.Sample(logits);
//   matcher.AcceptToken(id);           // advance (throws if id was not allowed)
//   if (matcher.MustEnd() || matcher.finished()) stop;
// MustEnd(): the output is complete and no text token can follow (for a JSON
// schema: the top-level value just closed), so stop without sampling EOS.
// CanEnd(): an end token (EOS / <end_of_turn>) is allowed now. The two differ
// while a complete output could still grow: a top-level JSON number (more
// digits), or a GBNF grammar such as root ::= [a-z]+; the model then chooses
// between more text and an end token.
//
// Cost: a state's mask is computed by one trie walk and kept in a small LRU
// cache keyed by DFA state, so the steps inside one JSON string (where the
// state repeats) cost only ApplyTokenMask. All buffers are allocated in the
// constructor; the DFA's tables grow as new states are met (a cache fill) and
// are compacted back when they exceed kMatcherCompactStates.
// Not thread-safe; use one matcher per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sampling/grammar/grammar.h"
#include "sampling/grammar/lazy_dfa.h"
#include "sampling/grammar/token_trie.h"

namespace rg {

inline constexpr size_t kMatcherMaskCache = 8;         // cached masks (one per DFA state)
inline constexpr size_t kMatcherCompactStates = 4096;  // DFA states kept between tokens
inline constexpr size_t kMatcherCompactFrames = 1 << 18;

class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> trie);

  // Bitset of the tokens allowed next: [TokenMaskWords(vocab_size())] words,
  // bit t % 64 of word t / 64. Valid until the next non-const call.
  const uint64_t* AllowedTokens();
  bool IsAllowed(int id);  // via AllowedTokens()
  // logits[t] = -inf for every disallowed t. logits: [vocab_size()].
  void MaskLogits(float* logits);

  // Advances by one sampled token. Throws rg::Error (naming the token) if it
  // is not allowed, or if called after finished().
  void AcceptToken(int id);
  // Advances by raw bytes (e.g. text forced into the output) if the grammar
  // accepts all of them; returns false and leaves the state unchanged if not.
  bool AcceptBytes(std::string_view bytes);
  // True if AcceptBytes(bytes) would succeed (the state is unchanged).
  bool CanAcceptBytes(std::string_view bytes);

  bool CanEnd() const { return !finished_ && dfa_.CanEnd(state_); }
  bool MustEnd() const { return finished_ || !dfa_.CanContinue(state_); }
  bool finished() const { return finished_; }  // an end token was accepted

  void Reset();  // back to the start of the grammar (caches kept)
  int vocab_size() const { return trie_->vocab_size(); }
  size_t dfa_states() const { return dfa_.num_states(); }  // memory in use (tests)
  const TokenTrie& trie() const { return *trie_; }

 private:
  void MaybeCompact();
  LazyDfa::StateId StateAfter(std::string_view bytes);  // kDead if rejected

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  LazyDfa dfa_;
  LazyDfa::StateId state_;
  bool finished_ = false;

  size_t words_;                                // TokenMaskWords(vocab)
  std::vector<LazyDfa::StateId> depth_states_;  // [trie max depth + 1] walk scratch
  std::vector<uint64_t> cache_bits_;            // [kMatcherMaskCache * words_] cached masks
  std::vector<LazyDfa::StateId> cache_state_;   // [kMatcherMaskCache] state of each, -1 = empty
  std::vector<uint64_t> cache_used_;            // [kMatcherMaskCache] LRU stamps
  uint64_t clock_ = 0;
  std::vector<uint64_t> none_;  // [words_] all zero: the mask once finished
};

}  // namespace rg
