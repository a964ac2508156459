#include "server/tokenize.h"

#include "server/chat_completions.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/encode_text.h"

namespace rg::server {

const char* const kChatTemplateJinja =
    "{{ bos_token }}{% set ns = namespace(system='', turn=0) %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.system = ns.system + (message['content'] | trim) + '\n\n' %}"
    "{% else %}"
    "{% if (message['role'] == 'user') != (ns.turn % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{% set content = ns.system + (message['content'] | trim) %}{% set ns.system = '' %}{% set ns.turn = ns.turn + 1 %}"
    "{{ '<start_of_turn>' + role + '\n' + content | trim + '<end_of_turn>\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

json TokenizerInfo(const ModelInfo& m) {
  if (!m.tokenizer) throw ApiError(404, "this model has no tokenizer", "", "invalid_request_error", "no_tokenizer");
  const Tokenizer& t = *m.tokenizer;
  return json{{"tokenizer_class", "GemmaTokenizer"},
              {"bos_token", std::string(t.Piece(t.bos_id()))},
              {"eos_token", std::string(t.Piece(t.eos_id()))},
              {"pad_token", std::string(t.Piece(t.pad_id()))},
              {"unk_token", std::string(t.Piece(t.unk_id()))},
              {"add_bos_token", true},
              {"vocab_size", t.vocab_size()},
              {"chat_template", kChatTemplateJinja}};
}

json Tokenize(const json& body, const ModelInfo& m, const ServerLimits& lim) {
  Fields f(body, "/tokenize");
  f.Ignored("model");
  const Tokenizer& tok = NeedTokenizer(m, "prompt", "/tokenize");
  const bool special = f.Bool("add_special_tokens", true);
  const bool gen_prompt = f.Bool("add_generation_prompt", true);
  const bool strs = f.Bool("return_token_strs", false);
  std::vector<int32_t> ids;
  const json* p = f.Get("prompt");
  const json* msgs = f.Get("messages");
  if ((p != nullptr) == (msgs != nullptr)) BadRequest("prompt", "give exactly one of prompt and messages");
  if (p) {
    if (!p->is_string()) BadRequest("prompt", std::string("prompt: expected a string, got ") + TypeName(*p));
    CheckPromptBytes(p->get_ref<const std::string&>().size(), "prompt", lim, "prompt");
    if (special) ids.push_back(m.config->bos_id);
    for (int32_t id : EncodeText(tok, p->get<std::string>())) ids.push_back(id);
  } else {
    json chat = {{"messages", *msgs}};
    ParsedRequest r = ParseChatRequest(chat, m, lim);  // same validation and template as chat
    ids = std::move(r.prompts[0]);
    if (!gen_prompt) ids.resize(ids.size() - GenerationPromptIds(tok).size());
    if (!special && !ids.empty() && ids[0] == m.config->bos_id) ids.erase(ids.begin());
  }
  f.RejectUnknown();
  json out = {{"count", ids.size()}, {"max_model_len", lim.max_prompt_tokens}, {"tokens", ids}};
  if (strs) {
    json s = json::array();
    for (int32_t id : ids) s.push_back(std::string(tok.Piece(id)));
    out["token_strs"] = std::move(s);
  }
  return out;
}

json Detokenize(const json& body, const ModelInfo& m) {
  Fields f(body, "/detokenize");
  f.Ignored("model");
  const Tokenizer& tok = NeedTokenizer(m, "tokens", "/detokenize");
  const json* t = f.Get("tokens");
  if (!t || !t->is_array()) BadRequest("tokens", "tokens: required, an array of token ids");
  const std::vector<int32_t> ids = IdList(*t, "tokens", std::min<int64_t>(m.config->vocab_size, tok.vocab_size()));
  f.RejectUnknown();
  return json{{"prompt", tok.Decode(std::vector<int>(ids.begin(), ids.end()))}};
}

}  // namespace rg::server
