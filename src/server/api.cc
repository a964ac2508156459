#include "server/api.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <set>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace rg::server {

ApiError::ApiError(int status_, std::string message_, std::string param_, std::string type_,
                   std::string code_)
    : status(status_), message(std::move(message_)), param(std::move(param_)), type(std::move(type_)),
      code(std::move(code_)) {
  if (type.empty()) type = status >= 500 ? "server_error" : "invalid_request_error";
}

void BadRequest(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

json ErrorJson(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return json{{"error", std::move(err)}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "nothing";
    default: return "a number";
  }
}

std::string Short(const json& v) {
  std::string s = Dump(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Reads the fields of one request object, remembering which were known.
class Fields {
 public:
  Fields(const json& body, const char* what) : body_(body), what_(what) {}

  // The value, or null when absent / JSON null.
  const json* Get(const std::string& name) {
    known_.insert(name);
    auto it = body_.find(name);
    if (it == body_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool Has(const std::string& name) { return Get(name) != nullptr; }

  bool Bool(const std::string& name, bool def) {
    const json* v = Get(name);
    if (!v) return def;
    if (!v->is_boolean()) BadRequest(name, name + ": expected a boolean, got " + TypeName(*v));
    return v->get<bool>();
  }

  int64_t Int(const std::string& name, int64_t lo, int64_t hi, int64_t def) {
    const json* v = Get(name);
    if (!v) return def;
    return IntValue(*v, name, lo, hi);
  }

  double Number(const std::string& name, double lo, double hi, double def, bool lo_open = false) {
    const json* v = Get(name);
    if (!v) return def;
    if (!v->is_number()) BadRequest(name, name + ": expected a number, got " + TypeName(*v));
    const double x = v->get<double>();
    const bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
    if (!ok)
      BadRequest(name, StrCat(name, ": must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got ", Short(*v)));
    return x;
  }

  // Fields that OpenAI defines but that have no effect here: accepted only at
  // their neutral value.
  void Neutral(const std::string& name, const std::function<bool(const json&)>& ok, const std::string& why) {
    const json* v = Get(name);
    if (v && !ok(*v)) BadRequest(name, name + ": " + why);
  }
  void Ignored(const std::string& name) { known_.insert(name); }

  // Anything not read above is refused, as the OpenAI API does.
  void RejectUnknown() {
    for (auto it = body_.begin(); it != body_.end(); ++it)
      if (!known_.count(it.key()))
        BadRequest(it.key(), StrCat("Unrecognized request argument supplied: ", it.key(), " (", what_,
                                    " accepts no such field)"));
  }

  static int64_t IntValue(const json& v, const std::string& name, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) {
      if (v.is_number_float()) {
        const double x = v.get<double>();
        if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return CheckRange(int64_t(x), v, name, lo, hi);
      }
      BadRequest(name, name + ": expected an integer, got " + (v.is_number() ? Short(v) : TypeName(v)));
    }
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) BadRequest(name, StrCat(name, ": must be in [", lo, ", ", hi, "], got ", Short(v)));
      return CheckRange(int64_t(u), v, name, lo, hi);
    }
    return CheckRange(v.get<int64_t>(), v, name, lo, hi);
  }

 private:
  static int64_t CheckRange(int64_t x, const json& v, const std::string& name, int64_t lo, int64_t hi) {
    if (x < lo || x > hi) BadRequest(name, StrCat(name, ": must be in [", lo, ", ", hi, "], got ", Short(v)));
    return x;
  }

  const json& body_;
  const char* what_;
  std::set<std::string> known_;
};

std::vector<int32_t> IdList(const json& arr, const std::string& name, const ModelInfo& m) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  const int64_t V = m.config->vocab_size;
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& v = arr[i];
    const std::string item = StrCat(name, "[", i, "]");
    if (!v.is_number_integer())
      BadRequest(name, item + ": expected a token id (integer), got " + (v.is_number() ? Short(v) : TypeName(v)));
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v.get<int64_t>();
    if (id < 0 || id >= V)
      BadRequest(name, StrCat(item, ": token id ", Short(v), " is outside the model's vocabulary [0, ", V, ")"));
    ids.push_back(int32_t(id));
  }
  return ids;
}

void CheckPromptLength(size_t n, const std::string& param, const ServerLimits& lim, const std::string& what) {
  if (n == 0) BadRequest(param, what + " is empty (nothing to continue from)");
  if (int64_t(n) > lim.max_prompt_tokens)
    BadRequest(param, StrCat(what, " has ", n, " tokens, more than this server's limit of ",
                             lim.max_prompt_tokens, " (--max-prompt-tokens)"));
}

const Tokenizer& NeedTokenizer(const ModelInfo& m, const std::string& param, const std::string& what) {
  if (!m.tokenizer)
    BadRequest(param, "this model has no tokenizer, so " + what +
                          " cannot be used: give the prompt as token ids (an array of integers)");
  return *m.tokenizer;
}

// Fields shared by both endpoints: sampling, stop, stream, extensions.
void ParseCommon(Fields& f, ParsedRequest& r, const ModelInfo& m, const ServerLimits& lim) {
  if (const json* v = f.Get("model")) {
    if (!v->is_string()) BadRequest("model", std::string("model: expected a string, got ") + TypeName(*v));
    r.model = v->get<std::string>();
  }
  r.n = int(f.Int("n", 1, lim.max_n, 1));

  SamplingParams& s = r.sampling;
  s = SamplingParams{};
  s.temperature = float(f.Number("temperature", 0, 2, 1.0));
  const double top_p = f.Number("top_p", 0, 1, 1.0);
  s.top_p = top_p > 0 ? float(top_p) : 1.0f;
  s.top_k = int(f.Int("top_k", -1, 1 << 30, 0));
  if (s.top_k < 0) s.top_k = 0;  // vLLM spells "off" as -1
  if (top_p == 0) s.top_k = 1;   // top_p 0 keeps only the most likely token
  s.min_p = float(f.Number("min_p", 0, 1, 0.0));
  s.presence_penalty = float(f.Number("presence_penalty", -2, 2, 0.0));
  s.frequency_penalty = float(f.Number("frequency_penalty", -2, 2, 0.0));
  const bool has_rp = f.Has("repetition_penalty"), has_rp2 = f.Has("repeat_penalty");
  if (has_rp && has_rp2) BadRequest("repeat_penalty", "give only one of repetition_penalty and repeat_penalty");
  s.repeat_penalty = float(has_rp ? f.Number("repetition_penalty", 0, 100, 1.0, true)
                                  : f.Number("repeat_penalty", 0, 100, 1.0, true));
  s.repeat_last_n = int(f.Int("repeat_last_n", 0, 1 << 20, 64));
  if (const json* v = f.Get("seed")) {
    if (v->is_number_unsigned()) s.seed = v->get<uint64_t>();
    else if (v->is_number_integer()) s.seed = uint64_t(v->get<int64_t>());
    else BadRequest("seed", std::string("seed: expected an integer, got ") + (v->is_number() ? Short(*v) : TypeName(*v)));
    r.seed_given = true;
  }
  try {
    s.Validate();
  } catch (const rg::Error& e) {
    BadRequest("", e.what());
  }

  if (const json* v = f.Get("stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (int64_t(v->size()) > lim.max_stop)
        BadRequest("stop", StrCat("stop: at most ", lim.max_stop, " stop strings, got ", v->size()));
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string())
          BadRequest("stop", StrCat("stop[", i, "]: expected a string, got ", TypeName((*v)[i])));
        r.stop.push_back((*v)[i].get<std::string>());
      }
    } else {
      BadRequest("stop", std::string("stop: expected a string or an array of strings, got ") + TypeName(*v));
    }
    for (const std::string& s : r.stop)
      if (s.size() > lim.max_stop_bytes)
        BadRequest("stop", StrCat("stop: a stop string has ", s.size(), " bytes, more than the limit of ",
                                  lim.max_stop_bytes));
    std::erase_if(r.stop, [](const std::string& s) { return s.empty(); });
    if (!r.stop.empty() && !m.tokenizer)
      BadRequest("stop", "stop: stop strings need a tokenizer and this model has none (use stop_token_ids)");
  }
  if (const json* v = f.Get("stop_token_ids")) {
    if (!v->is_array()) BadRequest("stop_token_ids", std::string("stop_token_ids: expected an array of integers, got ") + TypeName(*v));
    if (int64_t(v->size()) > lim.max_stop)
      BadRequest("stop_token_ids", StrCat("stop_token_ids: at most ", lim.max_stop, " ids, got ", v->size()));
    r.stop_ids = IdList(*v, "stop_token_ids", m);
  }

  r.stream = f.Bool("stream", false);
  if (const json* v = f.Get("stream_options")) {
    if (!v->is_object()) BadRequest("stream_options", std::string("stream_options: expected an object, got ") + TypeName(*v));
    Fields so(*v, "stream_options");
    r.include_usage = so.Bool("include_usage", false);
    so.Ignored("continuous_usage_stats");
    try {
      so.RejectUnknown();
    } catch (ApiError& e) {
      e.param = "stream_options";
      throw;
    }
  }
  r.ignore_eos = f.Bool("ignore_eos", false);
  r.return_tokens = f.Bool("return_tokens", false);

  // OpenAI fields accepted at their neutral values only.
  f.Ignored("user");
  f.Ignored("store");
  f.Ignored("metadata");
  f.Ignored("service_tier");
  f.Neutral("logit_bias", [](const json& v) { return v.is_object() && v.empty(); },
            "logit_bias is not supported (only {} or null)");
}

}  // namespace

json ParseJsonBody(const std::string& body, const ServerLimits& lim) {
  struct TooDeep {};
  const int max_depth = lim.max_json_depth;
  json::parser_callback_t cb = [max_depth](int depth, json::parse_event_t, json&) {
    if (depth > max_depth) throw TooDeep{};
    return true;
  };
  json j;
  try {
    j = json::parse(body, cb, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    std::string msg = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> the useful part
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    throw ApiError(400, "the request body is not valid JSON: " + msg);
  } catch (const TooDeep&) {
    throw ApiError(400, StrCat("the request body is nested more than ", max_depth, " levels deep"));
  }
  if (!j.is_object()) throw ApiError(400, std::string("the request body must be a JSON object, got ") + TypeName(j));
  return j;
}

ParsedRequest ParseCompletionRequest(const json& body, const ModelInfo& m, const ServerLimits& lim) {
  Fields f(body, "/v1/completions");
  ParsedRequest r;
  r.endpoint = Endpoint::kCompletions;
  ParseCommon(f, r, m, lim);
  r.max_tokens = f.Int("max_tokens", 0, lim.max_tokens, lim.default_max_tokens);
  r.echo = f.Bool("echo", false);
  r.logprobs = int(f.Int("logprobs", 0, lim.max_logprobs, -1));
  const bool add_bos = f.Bool("add_special_tokens", true);
  if (const json* v = f.Get("best_of")) {
    const int64_t b = Fields::IntValue(*v, "best_of", 1, lim.max_n);
    if (b != r.n) BadRequest("best_of", "best_of other than n is not supported");
  }
  f.Neutral("suffix", [](const json& v) { return v.is_string() && v.get<std::string>().empty(); },
            "suffix (insertion) is not supported by this model");

  const json* p = f.Get("prompt");
  if (!p) BadRequest("prompt", "prompt: required (a string, an array of token ids, or an array of either)");
  auto text_prompt = [&](const json& v, const std::string& name) {
    const Tokenizer& tok = NeedTokenizer(m, "prompt", "a text prompt");
    std::string text = v.get<std::string>();
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(m.config->bos_id);
    try {
      for (int32_t id : EncodeText(tok, text)) ids.push_back(id);
    } catch (const rg::Error& e) {
      BadRequest("prompt", name + ": " + e.what());
    }
    CheckPromptLength(ids.size(), "prompt", lim, name);
    r.prompts.push_back(std::move(ids));
    r.prompt_texts.push_back(std::move(text));
  };
  auto id_prompt = [&](const json& v, const std::string& name) {
    std::vector<int32_t> ids = IdList(v, name, m);
    CheckPromptLength(ids.size(), "prompt", lim, name);
    std::string text;
    if (m.tokenizer) text = m.tokenizer->Decode(std::vector<int>(ids.begin(), ids.end()));
    r.prompts.push_back(std::move(ids));
    r.prompt_texts.push_back(std::move(text));
  };
  if (p->is_string()) {
    text_prompt(*p, "prompt");
  } else if (p->is_array()) {
    if (p->empty()) BadRequest("prompt", "prompt: an empty array (nothing to continue from)");
    const json& first = (*p)[0];
    if (first.is_number()) {
      id_prompt(*p, "prompt");
    } else if (first.is_string() || first.is_array()) {
      if (int64_t(p->size()) > lim.max_prompts)
        BadRequest("prompt", StrCat("prompt: at most ", lim.max_prompts, " prompts in one request, got ", p->size()));
      for (size_t i = 0; i < p->size(); ++i) {
        const json& e = (*p)[i];
        const std::string name = StrCat("prompt[", i, "]");
        if (first.is_string() && e.is_string()) text_prompt(e, name);
        else if (first.is_array() && e.is_array()) id_prompt(e, name);
        else BadRequest("prompt", name + ": every prompt in a batch must have the same form (all strings or all "
                                         "arrays of token ids), got " + TypeName(e));
      }
    } else {
      BadRequest("prompt", std::string("prompt[0]: expected a token id, a string or an array of token ids, got ") +
                               TypeName(first));
    }
  } else {
    BadRequest("prompt", std::string("prompt: expected a string or an array, got ") + TypeName(*p));
  }
  f.RejectUnknown();
  return r;
}

ParsedRequest ParseChatRequest(const json& body, const ModelInfo& m, const ServerLimits& lim) {
  Fields f(body, "/v1/chat/completions");
  ParsedRequest r;
  r.endpoint = Endpoint::kChat;
  ParseCommon(f, r, m, lim);
  const bool has_mt = f.Has("max_tokens"), has_mct = f.Has("max_completion_tokens");
  if (has_mt && has_mct) BadRequest("max_tokens", "give only one of max_tokens and max_completion_tokens");
  r.max_tokens = has_mct ? f.Int("max_completion_tokens", 1, lim.max_tokens, 0)
                         : f.Int("max_tokens", 1, lim.max_tokens, std::min(lim.default_chat_max_tokens, lim.max_tokens));
  const bool want_lp = f.Bool("logprobs", false);
  const int64_t top = f.Int("top_logprobs", 0, lim.max_logprobs, -1);
  if (top >= 0 && !want_lp) BadRequest("top_logprobs", "top_logprobs needs logprobs: true");
  r.logprobs = want_lp ? int(std::max<int64_t>(top, 0)) : -1;
  f.Neutral("tools", [](const json& v) { return v.is_array() && v.empty(); }, "tools (function calling) are not supported");
  f.Neutral("tool_choice", [](const json& v) { return v == "none"; }, "tool_choice is not supported (only \"none\")");
  f.Neutral("functions", [](const json& v) { return v.is_array() && v.empty(); }, "functions are not supported");
  f.Neutral("function_call", [](const json& v) { return v == "none"; }, "function_call is not supported");
  f.Ignored("parallel_tool_calls");
  f.Neutral("response_format",
            [](const json& v) { return v.is_object() && v.size() == 1 && v.value("type", "") == "text"; },
            "only {\"type\": \"text\"} is supported");
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
    try {
      mf.RejectUnknown();
    } catch (ApiError& e) {
      e.message = name + ": " + e.message;
      e.param = "messages";
      throw;
    }
    chat.push_back(std::move(cm));
  }
  const Tokenizer& tok = [&]() -> const Tokenizer& {
    if (!m.tokenizer) BadRequest("messages", "this model has no tokenizer, so chat cannot be used (use /v1/completions with token ids)");
    return *m.tokenizer;
  }();
  std::vector<int32_t> ids;
  try {
    for (int id : ApplyChatTemplate(tok, chat, /*add_bos=*/true, /*add_generation_prompt=*/true)) ids.push_back(id);
  } catch (const rg::Error& e) {
    BadRequest("messages", e.what());
  }
  CheckPromptLength(ids.size(), "messages", lim, "the rendered conversation");
  r.prompts.push_back(std::move(ids));
  r.prompt_texts.push_back("");
  if (!r.ignore_eos) r.stop_ids.push_back(tok.end_of_turn_id());
  f.RejectUnknown();
  return r;
}

std::vector<int32_t> EncodeText(const Tokenizer& tok, std::string_view text) {
  const int specials[] = {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.unk_id()};
  std::vector<int32_t> out;
  size_t start = 0;
  auto encode_span = [&](size_t end) {
    if (end > start)
      for (int id : tok.Encode(text.substr(start, end - start))) out.push_back(id);
  };
  for (size_t i = 0; i < text.size();) {
    int match = -1;
    size_t len = 0;
    if (text[i] == '<') {
      for (int id : specials) {
        if (id < 0) continue;
        const std::string_view piece = tok.Piece(id);
        if (!piece.empty() && text.compare(i, piece.size(), piece) == 0) {
          match = id;
          len = piece.size();
          break;
        }
      }
    }
    if (match < 0) {
      ++i;
      continue;
    }
    encode_span(i);
    out.push_back(match);
    i += len;
    start = i;
  }
  encode_span(text.size());
  return out;
}

const char* const kChatTemplateJinja =
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] + '\n\n' %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{% if loop.first %}{% set content = system + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + content | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
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
  ModelInfo tm = m;
  Config c = *m.config;
  c.vocab_size = std::min<int64_t>(c.vocab_size, tok.vocab_size());
  tm.config = &c;
  const std::vector<int32_t> ids = IdList(*t, "tokens", tm);
  f.RejectUnknown();
  return json{{"prompt", tok.Decode(std::vector<int>(ids.begin(), ids.end()))}};
}

std::string TokenString(const Tokenizer* tok, int32_t id) {
  if (!tok || id < 0 || id >= tok->vocab_size()) return StrCat("token_id:", id);
  if (tok->IsControl(id) || tok->IsByte(id)) return std::string(tok->Piece(id));
  return std::string(tok->Surface(id));
}

std::vector<int> TokenBytes(const Tokenizer* tok, int32_t id) {
  std::vector<int> out;
  if (tok && id >= 0 && id < tok->vocab_size() && tok->IsByte(id)) {
    out.push_back(tok->ByteValue(id));
    return out;
  }
  for (unsigned char ch : TokenString(tok, id)) out.push_back(ch);
  return out;
}

std::string NewResponseId(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = counter.fetch_add(1);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%08llx", (unsigned long long)a, (unsigned long long)(b & 0xffffffffu));
  return std::string(prefix) + buf;
}

int64_t UnixTime() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace rg::server
