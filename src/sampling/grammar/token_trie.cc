#include "sampling/grammar/token_trie.h"

#include <algorithm>

#include "core/error.h"

namespace rg {

TokenTrie::TokenTrie(const TokenVocab& vocab) : kinds_(vocab.kinds) {
  const size_t n = vocab.kinds.size();
  RG_CHECK(n > 0, "token trie: empty vocabulary");
  RG_CHECK(vocab.bytes.size() == n, "token trie: ", vocab.bytes.size(), " token byte strings for ",
           n, " token kinds; expected one per token");
  RG_CHECK(n < (size_t(1) << 31), "token trie: vocabulary of ", n, " tokens is too large");
  offsets_.resize(n + 1);
  for (size_t id = 0; id < n; ++id) {
    const std::string& b = vocab.bytes[id];
    if (kinds_[id] == TokenKind::kText && b.size() > kMaxTokenBytes) {
      Fail("token trie: token ", id, " is ", b.size(), " bytes, above the limit of ",
           kMaxTokenBytes);
    }
    offsets_[id] = uint32_t(arena_.size());
    if (kinds_[id] == TokenKind::kText) arena_ += b;
    if (kinds_[id] == TokenKind::kEnd) end_tokens_.push_back(int32_t(id));
    RG_CHECK(arena_.size() < (size_t(1) << 32), "token trie: token bytes exceed 4 GiB");
  }
  offsets_[n] = uint32_t(arena_.size());

  // Text tokens in byte order; then one pass with a stack of open nodes.
  std::vector<int32_t> order;
  for (size_t id = 0; id < n; ++id) {
    if (kinds_[id] == TokenKind::kText && !bytes(int(id)).empty()) order.push_back(int32_t(id));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return bytes(a) < bytes(b); });
  next_same_.assign(n, -1);
  std::vector<uint32_t> open;  // [depth] node index of each open prefix
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view s = bytes(id);
    const size_t common = size_t(
        std::mismatch(prev.begin(), prev.begin() + std::min(prev.size(), s.size()), s.begin())
            .first -
        prev.begin());
    while (open.size() > common) {
      nodes_[open.back()].end = uint32_t(nodes_.size());
      open.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      open.push_back(uint32_t(nodes_.size()));
      nodes_.push_back(Node{0, -1, uint16_t(d + 1), uint8_t(s[d]), 0});
    }
    Node& node = nodes_[open.back()];
    next_same_[size_t(id)] = node.token;
    node.more = node.token >= 0;
    node.token = id;
    max_depth_ = std::max(max_depth_, s.size());
    prev = s;
  }
  while (!open.empty()) {
    nodes_[open.back()].end = uint32_t(nodes_.size());
    open.pop_back();
  }
}

size_t TokenTrie::memory_bytes() const {
  return kinds_.size() * (sizeof(TokenKind) + sizeof(uint32_t) + sizeof(int32_t)) + arena_.size() +
         nodes_.size() * sizeof(Node) + end_tokens_.size() * sizeof(int32_t);
}

}  // namespace rg
