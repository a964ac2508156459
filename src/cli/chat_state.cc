#include "cli/chat_state.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace rg::cli {

namespace {
constexpr uint32_t kStarted = 1u << 0;
constexpr uint32_t kEndOfTurn = 1u << 1;

void Put(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(char((v >> (8 * i)) & 0xff));
}
uint64_t Get(std::string_view b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(b[at + size_t(i)])) << (8 * i);
  return v;
}
}  // namespace

std::string EncodeChatExtras(const ChatExtras& e) {
  const size_t n = std::min<size_t>(e.recent_tokens.size(), kMaxRecentTokens);
  std::string out;
  out.reserve(16 + 4 * n);
  Put(&out, (e.started ? kStarted : 0) | (e.context_has_end_of_turn ? kEndOfTurn : 0), 4);
  Put(&out, n, 4);
  Put(&out, uint64_t(e.turns), 8);
  for (size_t i = e.recent_tokens.size() - n; i < e.recent_tokens.size(); ++i) Put(&out, uint32_t(e.recent_tokens[i]), 4);
  return out;
}

ChatExtras DecodeChatExtras(std::string_view b, const std::string& name, int64_t vocab_size) {
  RG_CHECK(b.size() >= 16, name, ": not a chat conversation (", b.size(),
           " bytes of chat data, expected at least 16): was it saved by rgemma chat?");
  const uint32_t flags = uint32_t(Get(b, 0, 4));
  RG_CHECK((flags & ~(kStarted | kEndOfTurn)) == 0, name, ": state file uses chat flags this build does not know (0x",
           std::hex, flags, ")");
  const uint32_t n = uint32_t(Get(b, 4, 4));
  RG_CHECK(n <= kMaxRecentTokens, name, ": corrupt chat data: ", n, " recent tokens (at most ", kMaxRecentTokens, ")");
  RG_CHECK(b.size() == 16 + size_t(n) * 4, name, ": corrupt chat data: ", b.size(), " bytes for ", n,
           " recent tokens (expected ", 16 + size_t(n) * 4, ")");
  ChatExtras e;
  e.started = flags & kStarted;
  e.context_has_end_of_turn = flags & kEndOfTurn;
  e.turns = int64_t(Get(b, 8, 8));
  RG_CHECK(e.turns >= 0, name, ": corrupt chat data: negative turn count");
  e.recent_tokens.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t id = uint32_t(Get(b, 16 + 4 * size_t(i), 4));
    RG_CHECK(int64_t(id) < vocab_size, name, ": corrupt chat data: recent token ", i, " is ", id,
             ", outside the vocabulary [0, ", vocab_size, ")");
    e.recent_tokens[i] = int32_t(id);
  }
  return e;
}

}  // namespace rg::cli
