#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace rg {

namespace {

// Length of the whitespace character (per Python str.isspace) at the start of
// `s`, or 0 if `s` does not start with one.
size_t WhitespaceLenAt(std::string_view s) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 == ' ' || (b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x1F)) return 1;
  if (s.size() >= 2 && b0 == 0xC2) {
    const auto b1 = static_cast<unsigned char>(s[1]);
    if (b1 == 0x85 || b1 == 0xA0) return 2;  // U+0085, U+00A0
  }
  if (s.size() >= 3) {
    const auto b1 = static_cast<unsigned char>(s[1]);
    const auto b2 = static_cast<unsigned char>(s[2]);
    if (b0 == 0xE1 && b1 == 0x9A && b2 == 0x80) return 3;  // U+1680
    if (b0 == 0xE2 && b1 == 0x80) {
      if (b2 <= 0x8A) return 3;                // U+2000..U+200A
      if (b2 == 0xA8 || b2 == 0xA9) return 3;  // U+2028, U+2029
      if (b2 == 0xAF) return 3;                // U+202F
    }
    if (b0 == 0xE2 && b1 == 0x81 && b2 == 0x9F) return 3;  // U+205F
    if (b0 == 0xE3 && b1 == 0x80 && b2 == 0x80) return 3;  // U+3000
  }
  return 0;
}

// Length of the whitespace character that ends `s`, or 0.
size_t WhitespaceLenBefore(std::string_view s) {
  for (size_t len = 1; len <= 3 && len <= s.size(); ++len) {
    const std::string_view tail = s.substr(s.size() - len);
    // Only try a tail that starts a character (not a continuation byte).
    if ((static_cast<unsigned char>(tail[0]) & 0xC0) == 0x80) continue;
    return WhitespaceLenAt(tail) == len ? len : 0;
  }
  return 0;
}

void Append(std::vector<int>* out, const std::vector<int>& ids) {
  out->insert(out->end(), ids.begin(), ids.end());
}

void CheckUtf8(std::string_view content, const std::string& what) {
  size_t bad = 0;
  if (!IsValidUtf8(content, &bad)) {
    Fail("chat template: ", what, " is not valid UTF-8 (invalid byte at offset ", bad, ")");
  }
}

void AppendTurn(const Tokenizer& tok, std::string_view role, std::string_view content,
                std::vector<int>* out) {
  CheckUtf8(content, "turn text");
  std::string text;
  const std::string_view trimmed = TrimChatContent(content);
  text.reserve(role.size() + 1 + trimmed.size());
  text.append(role).append("\n").append(trimmed);
  out->push_back(tok.start_of_turn_id());
  Append(out, tok.Encode(text));
  out->push_back(tok.end_of_turn_id());
  Append(out, tok.Encode("\n"));
}

void AppendGenerationPrompt(const Tokenizer& tok, std::vector<int>* out) {
  out->push_back(tok.start_of_turn_id());
  Append(out, tok.Encode("model\n"));
}

}  // namespace

std::string_view TrimChatContent(std::string_view s) {
  while (size_t n = WhitespaceLenAt(s)) s.remove_prefix(n);
  while (size_t n = WhitespaceLenBefore(s)) s.remove_suffix(n);
  return s;
}

bool ContainsTurnMarker(std::string_view text) {
  return text.find("<start_of_turn>") != std::string_view::npos ||
         text.find("<end_of_turn>") != std::string_view::npos;
}

std::vector<int> RenderTurnIds(const Tokenizer& tok, std::string_view role,
                               std::string_view content) {
  std::vector<int> out;
  AppendTurn(tok, role, content, &out);
  return out;
}

std::vector<int> GenerationPromptIds(const Tokenizer& tok) {
  std::vector<int> out;
  AppendGenerationPrompt(tok, &out);
  return out;
}

std::vector<int> ApplyChatTemplate(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   bool add_bos, bool add_generation_prompt, std::vector<size_t>* turn_ends) {
  if (turn_ends) turn_ends->clear();
  if (messages.empty()) Fail("chat template: no messages");
  std::vector<int> out;
  if (add_bos) out.push_back(tok.bos_id());

  // Gemma has no system role: a run of system messages is joined in order
  // (trimmed, "\n\n" between) and folded into the next message, which must
  // be a user turn: "{system}\n\n{user}".
  std::string system;
  size_t system_at = 0;  // index of the run's first message
  bool has_system = false;
  size_t turn = 0;  // rendered turns so far (roles alternate over these)
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      CheckUtf8(m.content, StrCat("content of message ", i));
      if (!has_system) system_at = i;
      if (has_system) system.append("\n\n");
      system.append(TrimChatContent(m.content));
      has_system = true;
      continue;
    }
    const bool want_user = turn % 2 == 0;
    std::string_view role;
    if (m.role == "user") {
      role = "user";
    } else if (m.role == "assistant" || m.role == "model") {
      role = "model";
    } else {
      Fail("chat template: message ", i, " has unknown role '", m.role,
           "' (expected user, assistant, model or system)");
    }
    if (has_system && role != "user")
      Fail("chat template: a system message (message ", system_at, ") must be followed by a user message");
    if ((role == "user") != want_user) {
      Fail("chat template: roles must alternate user/assistant starting with user; message ", i,
           " has role '", m.role, "', expected ", want_user ? "user" : "assistant");
    }
    CheckUtf8(m.content, StrCat("content of message ", i));
    if (has_system) {
      std::string folded = system;
      folded.append("\n\n").append(TrimChatContent(m.content));
      AppendTurn(tok, role, folded, &out);
      system.clear();
      has_system = false;
    } else {
      AppendTurn(tok, role, m.content, &out);
    }
    ++turn;
    if (turn_ends) turn_ends->push_back(out.size());
  }
  if (has_system)
    Fail("chat template: a system message (message ", system_at, ") must be followed by a user message");
  if (add_generation_prompt) AppendGenerationPrompt(tok, &out);
  return out;
}

std::vector<int> UserTurnIds(const Tokenizer& tok, std::string_view text, bool first_turn,
                             bool context_has_end_of_turn) {
  std::vector<int> out;
  if (first_turn) {
    out.push_back(tok.bos_id());
  } else {
    if (!context_has_end_of_turn) out.push_back(tok.end_of_turn_id());
    Append(&out, tok.Encode("\n"));
  }
  AppendTurn(tok, "user", text, &out);
  AppendGenerationPrompt(tok, &out);
  return out;
}

}  // namespace rg
