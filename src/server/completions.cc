#include "server/completions.h"

#include "core/error.h"
#include "tokenizer/encode_text.h"

namespace rg::server {

namespace {

// OpenAI's legacy logprobs object for the prompt (with_prompt: echo) and the
// generated tokens [from, to).
json CompletionLogprobs(const ParsedRequest& req_, const Tokenizer* tok, const ChoiceState& ch, bool with_prompt,
                        size_t from, size_t to) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  int64_t offset = with_prompt ? 0 : ch.stream_offset;
  auto add = [&](int32_t id, const TokenLogprob* t) {
    const std::string s = TokenString(tok, id);
    tokens.push_back(s);
    if (t) {
      lps.push_back(t->logprob);
      json top = json::object();
      for (const auto& [alt, lp] : t->top) {
        const std::string key = TokenString(tok, alt);
        if (!top.contains(key)) top[key] = lp;
      }
      if (!top.contains(s)) top[s] = t->logprob;  // the chosen token is always listed
      tops.push_back(std::move(top));
    } else {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
    }
    offsets.push_back(offset);
    offset += int64_t(TokenTextLength(tok, id));
  };
  if (with_prompt) {
    const std::vector<int32_t>& prompt = req_.prompts[ch.prompt];
    for (size_t i = 0; i < prompt.size(); ++i)
      add(prompt[i], i > 0 && i - 1 < ch.prompt_lp.size() ? &ch.prompt_lp[i - 1] : nullptr);
    if (req_.echo) offset = int64_t(req_.prompt_texts[ch.prompt].size());  // generated text follows the prompt text
  }
  for (size_t k = from; k < to; ++k) add(ch.tokens[k], k < ch.gen_lp.size() ? &ch.gen_lp[k] : nullptr);
  return json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(lps)},
              {"top_logprobs", std::move(tops)},
              {"text_offset", std::move(offsets)}};
}

class Completion : public ResponseShape {
 public:
  explicit Completion(const ModelInfo& m) : tok_(m.tokenizer) {}
  const char* id_prefix() const override { return "cmpl-"; }
  const char* object() const override { return "text_completion"; }
  const char* chunk_object() const override { return "text_completion"; }

  json StreamStart(const ParsedRequest& r, const ChoiceState& ch) const override {
    // The echoed prompt comes first, unless its log-probabilities come with it later.
    if (!r.echo || r.prompt_logprobs() || r.prompt_texts[ch.prompt].empty()) return nullptr;
    return {{"text", r.prompt_texts[ch.prompt]}, {"index", ch.index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  }

  json StreamPrompt(const ParsedRequest& r, const ChoiceState& ch) const override {
    return {{"text", r.prompt_texts[ch.prompt]},
            {"index", ch.index},
            {"logprobs", CompletionLogprobs(r, tok_, ch, true, 0, 0)},
            {"finish_reason", nullptr}};
  }

  json StreamDelta(const ParsedRequest& r, ChoiceState& ch, const std::string& delta, size_t from, size_t to,
                   const char* finish) const override {
    const bool lp = r.logprobs >= 0 && (!finish || to > from);
    json choice = {{"text", delta},
                   {"index", ch.index},
                   {"logprobs", lp ? CompletionLogprobs(r, tok_, ch, false, from, to) : json(nullptr)},
                   {"finish_reason", finish ? json(finish) : json(nullptr)}};
    for (size_t k = from; k < to; ++k) ch.stream_offset += int64_t(TokenTextLength(tok_, ch.tokens[k]));
    return choice;
  }

  json FinalChoice(const ParsedRequest& r, const ChoiceState& ch) const override {
    return {{"text", r.echo ? r.prompt_texts[ch.prompt] + ch.out : ch.out},
            {"index", ch.index},
            {"logprobs", r.logprobs >= 0 ? CompletionLogprobs(r, tok_, ch, r.echo, 0, ch.tokens.size()) : json(nullptr)},
            {"finish_reason", FinishReasonOf(ch)}};
  }

 private:
  const Tokenizer* tok_;
};

}  // namespace

ParsedRequest ParseCompletionRequest(const json& body, const ModelInfo& m, const ServerLimits& lim) {
  Fields f(body, "/v1/completions");
  ParsedRequest r;
  r.endpoint = Endpoint::kCompletions;
  ParseCommonFields(f, r, m, lim);
  r.max_tokens = ParseMaxTokens(f, {}, 0, lim.default_max_tokens, lim);
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
    CheckPromptBytes(text.size(), "prompt", lim, name);
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
    std::vector<int32_t> ids = IdList(v, name, m.config->vocab_size);
    CheckPromptLength(ids.size(), "prompt", lim, name);
    std::string text;
    if (m.tokenizer) {
      // Ids the tokenizer has no piece for (a padded vocabulary) are valid
      // prompt ids with no text (cli/model_files.h: SampleableVocab).
      std::vector<int> known;
      for (int32_t id : ids)
        if (id < m.tokenizer->vocab_size()) known.push_back(id);
      text = m.tokenizer->Decode(known);
    }
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
  f.CollectUnknown(&r.ignored_fields);
  return r;
}

std::unique_ptr<ResponseShape> CompletionShape(const ModelInfo& model) { return std::make_unique<Completion>(model); }

}  // namespace rg::server
