#include "server/openai_json.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "io/json_fields.h"

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

const json* Fields::Get(const std::string& name) {
  known_.insert(name);
  return FindField(body_, name);
}

bool Fields::Bool(const std::string& name, bool def) {
  const json* v = Get(name);
  if (!v) return def;
  if (!v->is_boolean()) BadRequest(name, name + ": expected a boolean, got " + TypeName(*v));
  return v->get<bool>();
}

int64_t Fields::Int(const std::string& name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = Get(name);
  if (!v) return def;
  return IntValue(*v, name, lo, hi);
}

double Fields::Number(const std::string& name, double lo, double hi, double def, bool lo_open) {
  const json* v = Get(name);
  if (!v) return def;
  if (!v->is_number()) BadRequest(name, name + ": expected a number, got " + TypeName(*v));
  const double x = v->get<double>();
  const bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) BadRequest(name, StrCat(name, ": must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got ", Short(*v)));
  return x;
}

void Fields::Neutral(const std::string& name, const std::function<bool(const json&)>& ok, const std::string& why) {
  const json* v = Get(name);
  if (v && !ok(*v)) BadRequest(name, name + ": " + why);
}

void Fields::RejectUnknown() {
  for (auto it = body_.begin(); it != body_.end(); ++it)
    if (!known_.count(it.key()))
      BadRequest(it.key(), StrCat("Unrecognized request argument supplied: ", Printable(it.key(), 80), " (", what_,
                                  " accepts no such field)"));
}

void Fields::CollectUnknown(std::vector<std::string>* out, const std::string& prefix) const {
  for (auto it = body_.begin(); it != body_.end(); ++it)
    if (!known_.count(it.key())) out->push_back(prefix + it.key());
}

namespace {
int64_t CheckRange(int64_t x, const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (x < lo || x > hi) BadRequest(name, StrCat(name, ": must be in [", lo, ", ", hi, "], got ", Short(v)));
  return x;
}
}  // namespace

int64_t Fields::IntValue(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (const std::optional<int64_t> x = IntegerValue(v)) return CheckRange(*x, v, name, lo, hi);
  if (v.is_number_unsigned())  // an integer, above INT64_MAX
    BadRequest(name, StrCat(name, ": must be in [", lo, ", ", hi, "], got ", Short(v)));
  BadRequest(name, name + ": expected an integer, got " + (v.is_number() ? Short(v) : TypeName(v)));
}

std::vector<int32_t> IdList(const json& arr, const std::string& name, int64_t vocab_size) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  const int64_t V = vocab_size;
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

size_t TokenTextLength(const Tokenizer* tok, int32_t id) {
  if (!tok || id < 0 || id >= tok->vocab_size() || tok->IsControl(id)) return 0;
  if (tok->IsByte(id)) return 1;
  return tok->Surface(id).size();
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
