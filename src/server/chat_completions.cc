#include "server/chat_completions.h"

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace rg::server {

namespace {

// The chat logprobs object for generated tokens [from, to).
json ChatLogprobs(const Tokenizer* tok, const ChoiceState& ch, size_t from, size_t to) {
  json content = json::array();
  for (size_t k = from; k < to && k < ch.gen_lp.size(); ++k) {
    const TokenLogprob& t = ch.gen_lp[k];
    json top = json::array();
    for (const auto& [alt, lp] : t.top)
      top.push_back({{"token", TokenString(tok, alt)}, {"logprob", lp}, {"bytes", TokenBytes(tok, alt)}});
    content.push_back({{"token", TokenString(tok, t.id)},
                       {"logprob", t.logprob},
                       {"bytes", TokenBytes(tok, t.id)},
                       {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}};
}

class ChatCompletion : public ResponseShape {
 public:
  explicit ChatCompletion(const ModelInfo& m) : tok_(m.tokenizer) {}
  const char* id_prefix() const override { return "chatcmpl-"; }
  const char* object() const override { return "chat.completion"; }
  const char* chunk_object() const override { return "chat.completion.chunk"; }

  json StreamStart(const ParsedRequest&, const ChoiceState& ch) const override {
    return {{"index", ch.index},
            {"delta", {{"role", "assistant"}, {"content", ""}}},
            {"logprobs", nullptr},
            {"finish_reason", nullptr}};
  }

  json StreamPrompt(const ParsedRequest&, const ChoiceState&) const override { return nullptr; }

  json StreamDelta(const ParsedRequest& r, ChoiceState& ch, const std::string& delta, size_t from, size_t to,
                   const char* finish) const override {
    json d = json::object();
    if (!finish || !delta.empty()) d["content"] = delta;
    const bool lp = r.logprobs >= 0 && (!finish || to > from);
    return {{"index", ch.index},
            {"delta", std::move(d)},
            {"logprobs", lp ? ChatLogprobs(tok_, ch, from, to) : json(nullptr)},
            {"finish_reason", finish ? json(finish) : json(nullptr)}};
  }

  json FinalChoice(const ParsedRequest& r, const ChoiceState& ch) const override {
    return {{"index", ch.index},
            {"message", {{"role", "assistant"}, {"content", ch.out}}},
            {"logprobs", r.logprobs >= 0 ? ChatLogprobs(tok_, ch, 0, ch.tokens.size()) : json(nullptr)},
            {"finish_reason", FinishReasonOf(ch)}};
  }

  // The client sends the reply back as an assistant message: the template
  // renders it as one more turn after the conversation so far.
  std::vector<int32_t> NextPromptPrefix(const ParsedRequest& r, const std::string& reply) const override {
    if (!tok_ || r.chat_history.empty()) return {};
    std::vector<int32_t> out = r.chat_history;
    for (int id : RenderTurnIds(*tok_, "model", reply)) out.push_back(id);
    return out;
  }

 private:
  const Tokenizer* tok_;
};

}  // namespace

ParsedRequest ParseChatRequest(const json& body, const ModelInfo& m, const ServerLimits& lim) {
  Fields f(body, "/v1/chat/completions");
  ParsedRequest r;
  r.endpoint = Endpoint::kChat;
  ParseCommonFields(f, r, m, lim);
  r.max_tokens = ParseMaxTokens(f, {"max_completion_tokens"}, 1, lim.default_chat_max_tokens, lim);
  const bool want_lp = f.Bool("logprobs", false);
  const int64_t top = f.Int("top_logprobs", 0, lim.max_logprobs, -1);
  if (top >= 0 && !want_lp) BadRequest("top_logprobs", "top_logprobs needs logprobs: true");
  r.logprobs = want_lp ? int(std::max<int64_t>(top, 0)) : -1;
  f.Neutral("tools", [](const json& v) { return v.is_array() && v.empty(); }, "tools (function calling) are not supported");
  f.Neutral("tool_choice", [](const json& v) { return v == "none"; }, "tool_choice is not supported (only \"none\")");
  f.Neutral("functions", [](const json& v) { return v.is_array() && v.empty(); }, "functions are not supported");
  f.Neutral("function_call", [](const json& v) { return v == "none"; }, "function_call is not supported");
  f.Ignored("parallel_tool_calls");
  f.Neutral("modalities", [](const json& v) { return v == json::array({"text"}); }, "only [\"text\"] is supported");
  f.Neutral("audio", [](const json&) { return false; }, "audio output is not supported");

  const json* msgs = f.Get("messages");
  if (!msgs) BadRequest("messages", "messages: required (an array of {role, content})");
  if (!msgs->is_array()) BadRequest("messages", std::string("messages: expected an array, got ") + TypeName(*msgs));
  if (msgs->empty()) BadRequest("messages", "messages: the array is empty");
  if (int64_t(msgs->size()) > lim.max_messages)
    BadRequest("messages", StrCat("messages: at most ", lim.max_messages, " messages, got ", msgs->size()));
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& mj = (*msgs)[i];
    const std::string name = StrCat("messages[", i, "]");
    if (!mj.is_object()) BadRequest("messages", name + ": expected an object, got " + TypeName(mj));
    Fields mf(mj, "a message");
    ChatMessage cm;
    const json* role = mf.Get("role");
    if (!role || !role->is_string()) BadRequest("messages", name + ".role: required, a string");
    cm.role = role->get<std::string>();
    if (cm.role == "developer") cm.role = "system";
    const json* content = mf.Get("content");
    if (!content) {
      if (cm.role != "assistant") BadRequest("messages", name + ".content: required");
    } else if (content->is_string()) {
      cm.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const json& part = (*content)[k];
        const std::string pname = StrCat(name, ".content[", k, "]");
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
          BadRequest("messages", pname + ": expected {\"type\": \"text\", \"text\": ...}");
        if (part["type"] != "text")
          BadRequest("messages", pname + ": content of type " + Short(part["type"]) + " is not supported (text only)");
        if (!part.contains("text") || !part["text"].is_string())
          BadRequest("messages", pname + ".text: required, a string");
        if (k) cm.content += "\n";
        cm.content += part["text"].get<std::string>();
      }
    } else {
      BadRequest("messages", name + ".content: expected a string or an array of text parts, got " + TypeName(*content));
    }
    mf.Ignored("name");
    mf.Neutral("tool_calls", [](const json& v) { return v.is_array() && v.empty(); }, "tool calls are not supported");
    mf.Ignored("refusal");
    mf.CollectUnknown(&r.ignored_fields, name + ".");
    chat.push_back(std::move(cm));
  }
  const Tokenizer& tok = [&]() -> const Tokenizer& {
    if (!m.tokenizer) BadRequest("messages", "this model has no tokenizer, so chat cannot be used (use /v1/completions with token ids)");
    return *m.tokenizer;
  }();
  size_t text_bytes = 0;
  for (const ChatMessage& cm : chat) text_bytes += cm.content.size();
  CheckPromptBytes(text_bytes, "messages", lim, "the conversation");
  std::vector<int32_t> ids;
  std::vector<size_t> turn_ends;
  try {
    for (int id : ApplyChatTemplate(tok, chat, /*add_bos=*/true, /*add_generation_prompt=*/true, &turn_ends))
      ids.push_back(id);
  } catch (const rg::Error& e) {
    BadRequest("messages", e.what());
  }
  CheckPromptLength(ids.size(), "messages", lim, "the rendered conversation");
  // Where earlier requests of this conversation left snapshots: after each
  // turn (a reply's closing "<end_of_turn>\n"), and after each user turn
  // plus the generation prompt (the end of the request that got the reply).
  const size_t gen_prompt = GenerationPromptIds(tok).size();
  for (size_t i = 0; i < turn_ends.size(); ++i) {
    r.cache_hints.push_back(int64_t(turn_ends[i]));
    if (i % 2 == 0 && i + 1 < turn_ends.size()) r.cache_hints.push_back(int64_t(turn_ends[i] + gen_prompt));  // user turns
  }
  r.chat_history.assign(ids.begin(), ids.end() - long(gen_prompt));
  r.prompts.push_back(std::move(ids));
  r.prompt_texts.push_back("");
  if (!r.ignore_eos) r.stop_ids.push_back(tok.end_of_turn_id());
  f.CollectUnknown(&r.ignored_fields);
  return r;
}

std::unique_ptr<ResponseShape> ChatShape(const ModelInfo& model) { return std::make_unique<ChatCompletion>(model); }

}  // namespace rg::server
