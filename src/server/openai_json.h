// The JSON pieces every endpoint of the OpenAI-compatible server shares: the
// error shape, safe serialization, reading a request object's fields with
// errors that name them, and how tokens are shown in responses. No HTTP.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace rg::server {

using json = nlohmann::ordered_json;

// An error answered to the client: HTTP status + OpenAI error JSON
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
struct ApiError : std::exception {
  ApiError(int status, std::string message, std::string param = {}, std::string type = {},
           std::string code = {});
  const char* what() const noexcept override { return message.c_str(); }
  int status;
  std::string message, param, type, code;
};

// A 400 invalid_request_error naming the field.
[[noreturn]] void BadRequest(const std::string& param, const std::string& message);

json ErrorJson(const ApiError& e);
// Serializes with invalid UTF-8 replaced (never throws on text from the model).
std::string Dump(const json& j);

// "a string", "an array", "a number", ... for messages.
const char* TypeName(const json& v);
// A value, shortened for a message.
std::string Short(const json& v);

// Reads the fields of one request object, remembering which were known, so
// that the rest can be refused or ignored (and logged) afterwards.
class Fields {
 public:
  Fields(const json& body, const char* what) : body_(body), what_(what) {}

  // The value, or null when absent / JSON null.
  const json* Get(const std::string& name);
  bool Has(const std::string& name) { return Get(name) != nullptr; }
  bool Bool(const std::string& name, bool def);
  int64_t Int(const std::string& name, int64_t lo, int64_t hi, int64_t def);
  double Number(const std::string& name, double lo, double hi, double def, bool lo_open = false);
  // Fields that OpenAI defines but that have no effect here: accepted only at
  // their neutral value.
  void Neutral(const std::string& name, const std::function<bool(const json&)>& ok, const std::string& why);
  void Ignored(const std::string& name) { known_.insert(name); }
  // Anything not read above is refused (400 naming it), as the OpenAI API does.
  void RejectUnknown();
  // Anything not read above is appended to *out as prefix + name, to be
  // ignored: clients (LangChain, llama.cpp's web UI, ...) send extras.
  void CollectUnknown(std::vector<std::string>* out, const std::string& prefix = {}) const;

  static int64_t IntValue(const json& v, const std::string& name, int64_t lo, int64_t hi);

 private:
  const json& body_;
  const char* what_;
  std::set<std::string> known_;
};

// Token ids of a JSON array, each inside [0, vocab_size); 400 naming `name`.
std::vector<int32_t> IdList(const json& arr, const std::string& name, int64_t vocab_size);

// How a token is shown in log-probability listings: its text (U+2581 as
// space); control pieces as their piece ("<eos>"), byte pieces as "<0xNN>";
// without a tokenizer "token_id:N".
std::string TokenString(const Tokenizer* tok, int32_t id);
// The bytes a token contributes to the text (chat logprobs "bytes").
std::vector<int> TokenBytes(const Tokenizer* tok, int32_t id);
// Length in bytes of the text a token contributes (completions text_offset).
size_t TokenTextLength(const Tokenizer* tok, int32_t id);

// A unique response id: prefix + 24 hex digits.
std::string NewResponseId(const char* prefix);
int64_t UnixTime();

}  // namespace rg::server
