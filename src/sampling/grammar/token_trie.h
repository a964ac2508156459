// A byte trie (prefix tree) over every kText token of a vocabulary, built once
// at load and shared (immutable) by every sequence. token_mask.h walks it
// against a grammar state: a subtree is skipped as soon as its prefix is
// rejected, so the mask never scans all token strings one by one.
//
// Layout: nodes in preorder (depth-first, children in byte order), so the
// subtree of node i is the contiguous range [i, nodes[i].end) and a walk is a
// linear scan that jumps over rejected subtrees. The root (empty prefix) is
// implicit: nodes[0] is its first child. Tokens with empty bytes are never
// allowed and are not in the trie.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "sampling/grammar/token_vocab.h"

namespace rg {

class TokenTrie {
 public:
  struct Node {
    uint32_t end;    // one past the last node of this node's subtree
    int32_t token;   // a token whose bytes end here, -1 if none
    uint16_t depth;  // prefix length in bytes, >= 1
    uint8_t byte;    // last byte of the prefix
    uint8_t more;    // 1 if other tokens end here too (see next_same()); rare, so
                     // the walk reads the [vocab] chain array only then
  };

  // Throws rg::Error if the vocabulary is empty, bytes/kinds sizes differ, or
  // a token is longer than kMaxTokenBytes.
  explicit TokenTrie(const TokenVocab& vocab);

  static constexpr size_t kMaxTokenBytes = 65535;

  int vocab_size() const { return int(kinds_.size()); }
  TokenKind kind(int id) const { return kinds_[size_t(id)]; }
  std::string_view bytes(int id) const {
    return std::string_view(arena_).substr(offsets_[size_t(id)],
                                           offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
  }
  const std::vector<Node>& nodes() const { return nodes_; }
  // Another token with the same bytes as `id`, or -1 (a chain per node).
  // E.g. the byte-fallback token <0x41> and the token "A".
  int32_t next_same(int32_t id) const { return next_same_[size_t(id)]; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  size_t max_depth() const { return max_depth_; }
  size_t memory_bytes() const;

 private:
  std::vector<TokenKind> kinds_;     // [vocab]
  std::string arena_;                // all token bytes, concatenated
  std::vector<uint32_t> offsets_;    // [vocab + 1] into arena_
  std::vector<Node> nodes_;          // [n_nodes] preorder
  std::vector<int32_t> next_same_;   // [vocab] chain of tokens sharing a node
  std::vector<int32_t> end_tokens_;  // ids of kEnd tokens
  size_t max_depth_ = 0;
};

}  // namespace rg
