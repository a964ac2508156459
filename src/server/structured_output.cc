#include "server/structured_output.h"

#include "core/error.h"
#include "sampling/grammar/gbnf_parser.h"
#include "sampling/grammar/json_schema.h"

namespace rg::server {

namespace {

// Runs a grammar compiler; its rg::Error (one line naming the keyword or the
// GBNF position) becomes a 400 naming `param`.
template <class Fn>
std::shared_ptr<const Grammar> Compile(const std::string& param, Fn&& fn) {
  try {
    return std::make_shared<const Grammar>(fn());
  } catch (const rg::Error& e) {
    BadRequest(param, param + ": " + e.what());
  }
}

// response_format -> the grammar it asks for (null for "text").
std::shared_ptr<const Grammar> ResponseFormat(const json& v, std::vector<std::string>* ignored) {
  const std::string name = "response_format";
  if (!v.is_object()) BadRequest(name, name + ": expected an object, got " + TypeName(v));
  Fields rf(v, "response_format");
  const json* type = rf.Get("type");
  if (!type || !type->is_string())
    BadRequest(name, name + ".type: required, one of \"text\", \"json_object\", \"json_schema\"");
  const std::string t = type->get<std::string>();
  std::shared_ptr<const Grammar> g;
  if (t == "text") {
  } else if (t == "json_object") {
    const json* schema = rf.Get("schema");  // llama-server's extension
    g = schema ? Compile(name, [&] { return CompileJsonSchema(*schema); }) : Compile(name, [] { return JsonObjectGrammar(); });
  } else if (t == "json_schema") {
    const json* js = rf.Get("json_schema");
    if (!js || !js->is_object())
      BadRequest(name, name + ".json_schema: required, an object {\"name\", \"schema\", \"strict\"}");
    Fields jf(*js, "response_format.json_schema");
    if (const json* n = jf.Get("name"); n && !n->is_string())
      BadRequest(name, std::string(name + ".json_schema.name: expected a string, got ") + TypeName(*n));
    if (const json* d = jf.Get("description"); d && !d->is_string())
      BadRequest(name, std::string(name + ".json_schema.description: expected a string, got ") + TypeName(*d));
    jf.Bool("strict", false);  // the grammar is always enforced
    const json* schema = jf.Get("schema");
    // No schema: OpenAI's JSON mode, any object.
    g = schema ? Compile(name, [&] { return CompileJsonSchema(*schema); }) : Compile(name, [] { return JsonObjectGrammar(); });
    jf.CollectUnknown(ignored, "response_format.json_schema.");
  } else {
    BadRequest(name, name + ".type: expected \"text\", \"json_object\" or \"json_schema\", got " + Short(*type));
  }
  rf.CollectUnknown(ignored, "response_format.");
  return g;
}

}  // namespace

void ParseStructuredOutput(Fields& f, ParsedRequest& r, const ModelInfo& m) {
  std::vector<std::pair<std::string, std::shared_ptr<const Grammar>>> given;
  if (const json* v = f.Get("response_format"))
    if (auto g = ResponseFormat(*v, &r.ignored_fields)) given.emplace_back("response_format", std::move(g));
  if (const json* v = f.Get("json_schema"))
    given.emplace_back("json_schema", Compile("json_schema", [&] { return CompileJsonSchema(*v); }));
  if (const json* v = f.Get("grammar")) {
    if (!v->is_string()) BadRequest("grammar", std::string("grammar: expected GBNF text (a string), got ") + TypeName(*v));
    const std::string text = v->get<std::string>();
    if (!text.empty()) given.emplace_back("grammar", Compile("grammar", [&] { return ParseGbnf(text, "grammar"); }));
  }
  if (given.empty()) return;
  if (given.size() > 1)
    BadRequest(given[1].first, StrCat("give only one of response_format, json_schema and grammar (got ",
                                      given[0].first, " and ", given[1].first, ")"));
  if (!m.tokenizer || !m.grammar_trie)
    BadRequest(given[0].first, given[0].first + ": structured output needs a tokenizer and this model has none");
  r.grammar = std::move(given[0].second);
}

}  // namespace rg::server
