// Gemma chat format, produced directly as token ids.
//
// The Hugging Face template (tokenizer_config.json) renders
//   <bos><start_of_turn>user\n{content|trim}<end_of_turn>\n
//   <start_of_turn>model\n{content|trim}<end_of_turn>\n ... <start_of_turn>model\n
// We build the same sequence by concatenating ids: the structural tokens
// (BOS = 2, <start_of_turn> = 106, <end_of_turn> = 107) are inserted as ids and
// only the text in between goes through Encode(). Because those tokens are
// frozen symbols for sentencepiece, this equals encoding the rendered string
// (with BOS as id 2 rather than the text "<bos>", which would not match).
//
// SECURITY NOTE: <start_of_turn> / <end_of_turn> are USER_DEFINED pieces, and
// sentencepiece matches user-defined pieces wherever they appear in text. A
// user who types the literal text "<end_of_turn>" inside a message therefore
// gets token 107 in the middle of their turn, exactly as with the reference
// Python / HF stacks (this is how Gemma tokenization works, not a bug here).
// The turn boundaries we add are ids and cannot be removed by message text,
// but message text can add extra boundaries. Callers that must prevent that
// can check ContainsTurnMarker() and reject or escape the text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rg {

struct ChatMessage {
  std::string role;     // "user", "assistant" (or "model"), "system"
  std::string content;
};

// Strips leading/trailing whitespace like Jinja's `trim` (Python str.strip():
// ASCII whitespace, \x1c-\x1f, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000).
std::string_view TrimChatContent(std::string_view s);

// True if `text` contains a literal "<start_of_turn>" or "<end_of_turn>".
bool ContainsTurnMarker(std::string_view text);

// Ids of one complete turn:
//   <start_of_turn> Encode(role + "\n" + trim(content)) <end_of_turn> Encode("\n")
// `role` is used verbatim ("user" or "model"); no BOS.
std::vector<int> RenderTurnIds(const Tokenizer& tok, std::string_view role,
                               std::string_view content);

// Ids of the generation prompt: <start_of_turn> Encode("model\n").
std::vector<int> GenerationPromptIds(const Tokenizer& tok);

// The whole conversation. Roles: "user", "assistant"/"model" (rendered as
// "model"), and "system": Gemma has none, so a run of system messages is
// joined in order ("\n\n" between, each trimmed) and folded into the next
// message, which must be a user turn: "{system}\n\n{user}" (then trimmed).
// Leaving those out, roles must alternate user, model, user, ... starting with user;
// otherwise (or for an unknown role / no messages) throws rg::Error naming
// the message index. BOS (id 2) is prepended only if add_bos. turn_ends, if
// given, receives the length of the ids after each rendered turn (a system
// message has none of its own).
std::vector<int> ApplyChatTemplate(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   bool add_bos, bool add_generation_prompt,
                                   std::vector<size_t>* turn_ends = nullptr);

// Ids to append for the next user turn of an interactive chat, ending with
// the generation prompt, so the model answers next:
//   first_turn:  BOS <start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
//   otherwise:   \n<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
// The non-first form continues a context whose previous model turn ended with
// <end_of_turn>. If the generator stopped on <end_of_turn> WITHOUT feeding it
// to the model (so the context does not contain it yet), pass
// context_has_end_of_turn = false and the id is prepended.
std::vector<int> UserTurnIds(const Tokenizer& tok, std::string_view text, bool first_turn,
                             bool context_has_end_of_turn = true);

}  // namespace rg
