// The token mask: which tokens of the vocabulary may come next in a grammar
// state, computed by walking the token trie (token_trie.h) against the lazy
// DFA (lazy_dfa.h). Each trie node costs one cached DFA step; a rejected
// prefix skips its whole subtree. A token is allowed iff every byte of it is
// accepted, i.e. its bytes are a prefix of some complete match (the grammar
// checks guarantee every live state can still complete).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sampling/grammar/lazy_dfa.h"
#include "sampling/grammar/token_trie.h"

namespace rg {

// Words of a token bitset: bit (t % 64) of word t / 64 is token t.
inline size_t TokenMaskWords(int vocab_size) { return (size_t(vocab_size) + 63) / 64; }

// Fills bits[0 .. TokenMaskWords(V)) for state s: kText tokens whose bytes
// the grammar accepts from s, kEnd tokens iff dfa.CanEnd(s), never kSpecial.
// depth_states: scratch of trie.max_depth() + 1 entries (no allocation here;
// new DFA states may be interned as a cache fill).
void ComputeTokenMask(LazyDfa& dfa, LazyDfa::StateId s, const TokenTrie& trie,
                      LazyDfa::StateId* depth_states, uint64_t* bits);

// Sets logits[t] = -inf for every token t whose bit is clear. logits: [V].
void ApplyTokenMask(const uint64_t* bits, int vocab_size, float* logits);

}  // namespace rg
