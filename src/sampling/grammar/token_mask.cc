#include "sampling/grammar/token_mask.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace rg {

void ComputeTokenMask(LazyDfa& dfa, LazyDfa::StateId s, const TokenTrie& trie,
                      LazyDfa::StateId* depth_states, uint64_t* bits) {
  std::memset(bits, 0, TokenMaskWords(trie.vocab_size()) * sizeof(uint64_t));
  const auto allow = [bits](int32_t t) { bits[t >> 6] |= uint64_t(1) << (t & 63); };
  if (dfa.CanEnd(s)) {
    for (int32_t t : trie.end_tokens()) allow(t);
  }
  if (!dfa.CanContinue(s)) return;

  // depth_states[d] = state after the first d bytes of the current prefix.
  depth_states[0] = s;
  const TokenTrie::Node* nodes = trie.nodes().data();
  const uint32_t n = uint32_t(trie.nodes().size());
  for (uint32_t i = 0; i < n;) {
    const TokenTrie::Node& node = nodes[i];
    const LazyDfa::StateId next = dfa.Step(depth_states[node.depth - 1], node.byte);
    if (next == LazyDfa::kDead) {
      i = node.end;  // no token under this prefix can be accepted
      continue;
    }
    depth_states[node.depth] = next;
    // Branch-free: about half the nodes end a token, an unpredictable branch.
    const int32_t t = node.token;
    const size_t word = size_t(t >= 0 ? t : 0) >> 6;
    bits[word] |= uint64_t(t >= 0) << (t & 63);
    if (node.more) {
      for (int32_t u = trie.next_same(t); u >= 0; u = trie.next_same(u)) allow(u);
    }
    ++i;
  }
}

void ApplyTokenMask(const uint64_t* bits, int vocab_size, float* logits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const size_t words = TokenMaskWords(vocab_size);
  for (size_t w = 0; w < words; ++w) {
    const uint64_t allowed = bits[w];
    if (allowed == ~uint64_t(0)) continue;
    const size_t base = w * 64;
    const size_t count = std::min<size_t>(64, size_t(vocab_size) - base);
    if (allowed == 0) {
      std::fill_n(logits + base, count, kNegInf);  // most words in structural states
      continue;
    }
    for (size_t k = 0; k < count; ++k) {
      if (!((allowed >> k) & 1)) logits[base + k] = kNegInf;
    }
  }
}

}  // namespace rg
