#include "server/request.h"

#include <cctype>
#include <cmath>

#include "core/error.h"
#include "server/structured_output.h"

namespace rg::server {

void CheckPromptLength(size_t n, const std::string& param, const ServerLimits& lim, const std::string& what) {
  if (n == 0) BadRequest(param, what + " is empty (nothing to continue from)");
  if (int64_t(n) > lim.max_prompt_tokens)
    BadRequest(param, StrCat(what, " has ", n, " tokens, more than this server's limit of ",
                             lim.max_prompt_tokens, " (--max-prompt-tokens)"));
}

void CheckPromptBytes(size_t bytes, const std::string& param, const ServerLimits& lim, const std::string& what) {
  if (bytes > lim.max_prompt_bytes)
    BadRequest(param, StrCat(what, " has ", bytes, " bytes of text, more than this server's limit of ",
                             lim.max_prompt_bytes, " (--max-prompt-bytes)"));
}

const Tokenizer& NeedTokenizer(const ModelInfo& m, const std::string& param, const std::string& what) {
  if (!m.tokenizer)
    BadRequest(param, "this model has no tokenizer, so " + what +
                          " cannot be used: give the prompt as token ids (an array of integers)");
  return *m.tokenizer;
}

int64_t ParseMaxTokens(Fields& f, const std::vector<std::string>& aliases, int64_t min, int64_t def,
                       const ServerLimits& lim) {
  std::vector<std::string> names = {"max_tokens"};
  names.insert(names.end(), aliases.begin(), aliases.end());
  names.push_back("n_predict");
  const std::string* given = nullptr;
  for (const std::string& n : names) {
    if (!f.Has(n)) continue;
    if (given) BadRequest(n, StrCat("give only one of ", *given, " and ", n));
    given = &n;
  }
  if (!given) return std::min(def, lim.max_tokens);
  const std::string& name = *given;
  const int64_t v = Fields::IntValue(*f.Get(name), name, name == "n_predict" ? -1 : min, INT64_MAX);
  if (v == -1) return lim.max_tokens;  // n_predict -1: until a stop
  if (v < min) BadRequest(name, StrCat(name, ": must be at least ", min, ", got ", v));
  if (v > lim.max_tokens)
    BadRequest(name, StrCat(name, ": ", v, " is more than this server's limit of ", lim.max_tokens,
                            " (--max-tokens-limit)"));
  return v;
}

namespace {

// {"token id": bias, ...} with ids as decimal strings (OpenAI's form).
std::vector<LogitBias> ParseLogitBias(const json& v, int64_t vocab_size) {
  const std::string name = "logit_bias";
  if (!v.is_object())
    BadRequest(name, std::string("logit_bias: expected an object {\"token id\": bias}, got ") + TypeName(v));
  std::vector<LogitBias> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& key = it.key();
    char* end = nullptr;
    const long long id = key.empty() || key.size() > 10 ? -1 : std::strtoll(key.c_str(), &end, 10);
    if (!end || *end || id < 0 || id >= vocab_size || !std::isdigit((unsigned char)key[0]))
      BadRequest(name, StrCat("logit_bias: key ", Short(json(key)), " is not a token id in the model's vocabulary [0, ",
                              vocab_size, ")"));
    const json& b = it.value();
    if (!b.is_number() || !std::isfinite(b.get<double>()) || std::fabs(b.get<double>()) > kMaxLogitBias)
      BadRequest(name, StrCat("logit_bias[", key, "]: expected a number in [-100, 100], got ",
                              b.is_number() ? Short(b) : TypeName(b)));
    out.push_back({int32_t(id), float(b.get<double>())});
  }
  return out;
}

}  // namespace

// Fields shared by both endpoints: sampling, stop, stream, extensions.
void ParseCommonFields(Fields& f, ParsedRequest& r, const ModelInfo& m, const ServerLimits& lim) {
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
    r.stop_ids = IdList(*v, "stop_token_ids", m.config->vocab_size);
  }

  r.stream = f.Bool("stream", false);
  if (const json* v = f.Get("stream_options")) {
    if (!v->is_object()) BadRequest("stream_options", std::string("stream_options: expected an object, got ") + TypeName(*v));
    Fields so(*v, "stream_options");
    r.include_usage = so.Bool("include_usage", false);
    so.Ignored("continuous_usage_stats");
    so.CollectUnknown(&r.ignored_fields, "stream_options.");
  }
  r.ignore_eos = f.Bool("ignore_eos", false);
  r.cache_prompt = f.Bool("cache_prompt", true);
  r.return_tokens = f.Bool("return_tokens", false);
  if (const json* v = f.Get("logit_bias")) r.logit_bias = ParseLogitBias(*v, m.config->vocab_size);
  ParseStructuredOutput(f, r, m);

  // OpenAI fields accepted at their neutral values only.
  f.Ignored("user");
  f.Ignored("store");
  f.Ignored("metadata");
  f.Ignored("service_tier");
}

json ParseJsonBody(const std::string& body, const ServerLimits& lim) {
  // A raw NUL is never valid JSON (inside a string it must be \u0000), but
  // nlohmann's lexer takes it for the end of the input and would accept
  // `{...}\0garbage`.
  if (const size_t nul = body.find('\0'); nul != std::string::npos)
    throw ApiError(400, StrCat("the request body is not valid JSON: a NUL byte at offset ", nul));
  struct TooDeep {};
  const int max_depth = lim.max_json_depth;
  std::string last_key;  // names the field when a value cannot be read
  json::parser_callback_t cb = [max_depth, &last_key](int depth, json::parse_event_t event, json& parsed) {
    if (depth > max_depth) throw TooDeep{};
    if (event == json::parse_event_t::key && parsed.is_string()) last_key = parsed.get<std::string>();
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
  } catch (const json::out_of_range& e) {
    // A number beyond double's range (1e400): "... number overflow parsing '1e400'".
    std::string number = e.what();
    const size_t q = number.find('\'');
    number = q == std::string::npos ? "" : number.substr(q + 1, std::min<size_t>(number.size() - q - 2, 40)) + " ";
    throw ApiError(400, StrCat(last_key.empty() ? "" : Printable(last_key, 80) + ": ", "the number ", number,
                               "is out of range (beyond +-1.8e308)"),
                   last_key);
  } catch (const TooDeep&) {
    throw ApiError(400, StrCat("the request body is nested more than ", max_depth, " levels deep"));
  }
  if (!j.is_object()) throw ApiError(400, std::string("the request body must be a JSON object, got ") + TypeName(j));
  return j;
}

}  // namespace rg::server
