// What `rgemma chat` keeps besides the model State, and how it rides in a
// state file's application data (model/state_io.h). The bytes are those of
// the chat extras of state format version 1, so conversations saved by
// earlier versions load unchanged:
//   u32 flags: bit 0 started (BOS + first turn fed), bit 1 the context ends
//       with <end_of_turn>; other bits 0
//   u32 n_recent
//   i64 turns completed
//   i32[n_recent] the last tokens fed (sampler penalty history), oldest first
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rg::cli {

inline constexpr uint32_t kMaxRecentTokens = 1u << 20;

struct ChatExtras {
  bool started = false;                  // the first user turn (with BOS) was fed
  bool context_has_end_of_turn = false;  // the context ends with <end_of_turn>
  int64_t turns = 0;                     // completed turns (for numbering)
  std::vector<int32_t> recent_tokens;    // last fed tokens, oldest first (<= kMaxRecentTokens)
};

std::string EncodeChatExtras(const ChatExtras& e);
// Throws a one-line rg::Error starting with `name` for anything malformed
// (ids checked against vocab_size).
ChatExtras DecodeChatExtras(std::string_view bytes, const std::string& name, int64_t vocab_size);

}  // namespace rg::cli
