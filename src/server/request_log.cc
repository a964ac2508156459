#include "server/request_log.h"

#include <cstdio>
#include <ctime>

#include "core/error.h"
#include "server/openai_json.h"

namespace rg::server {

LogFormat ParseLogFormat(std::string_view s) {
  if (s == "text") return LogFormat::kText;
  if (s == "json") return LogFormat::kJson;
  Fail("--log-format: expected text or json, got '", s, "'");
}

const char* EndpointName(std::string_view path) {
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  if (path == "/completions") return "completions";
  if (path == "/chat/completions") return "chat_completions";
  if (path == "/models" || path.starts_with("/models/")) return "models";
  if (path == "/health") return "health";
  if (path == "/metrics") return "metrics";
  if (path == "/tokenize") return "tokenize";
  if (path == "/detokenize") return "detokenize";
  if (path == "/tokenizer_info") return "tokenizer_info";
  return "other";
}

namespace {

std::string Timestamp(std::chrono::system_clock::time_point now) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t t = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

std::string Fixed(double x, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

std::string Text(const RequestRecord& r, const std::string& time) {
  std::string s = StrCat(time, " ", r.method, " ", r.path, " ", r.status);
  if (r.generation) {
    s += StrCat(r.stream ? " stream" : "", " prompt=", r.prompt_tokens, " cached=", r.cached_tokens,
                " generated=", r.generated_tokens);
    if (r.first_token_seconds >= 0) s += " first_token=" + Fixed(r.first_token_seconds, 3) + "s";
    if (r.decode_tokens_per_second >= 0) s += " decode=" + Fixed(r.decode_tokens_per_second, 1) + "tok/s";
  }
  if (r.total_seconds >= 0) s += " total=" + Fixed(r.total_seconds, 3) + "s";
  if (!r.ignored_fields.empty()) s += " ignored_fields=" + Joined(r.ignored_fields);
  if (!r.message.empty()) s += " " + Dump(json(r.message));  // quoted: one line whatever it holds
  return s;
}

std::string Json(const RequestRecord& r, const std::string& time) {
  json j = {{"time", time}, {"method", r.method}, {"path", r.path}, {"endpoint", EndpointName(r.path)},
            {"status", r.status}};
  if (r.generation) {
    j["stream"] = r.stream;
    j["prompt_tokens"] = r.prompt_tokens;
    j["cached_tokens"] = r.cached_tokens;
    j["generated_tokens"] = r.generated_tokens;
    if (r.first_token_seconds >= 0) j["first_token_seconds"] = r.first_token_seconds;
    if (r.decode_tokens_per_second >= 0) j["decode_tokens_per_second"] = r.decode_tokens_per_second;
  }
  if (r.total_seconds >= 0) j["total_seconds"] = r.total_seconds;
  if (!r.ignored_fields.empty()) j["ignored_fields"] = r.ignored_fields;
  if (!r.message.empty()) j[r.status >= 400 ? "error" : "note"] = r.message;
  return Dump(j);
}

}  // namespace

std::string FormatRequestRecord(const RequestRecord& r, LogFormat format, std::chrono::system_clock::time_point now) {
  const std::string time = Timestamp(now);
  return format == LogFormat::kJson ? Json(r, time) : Text(r, time);
}

void RequestLog::Write(const RequestRecord& r) {
  if (!enabled_) return;
  std::string line = FormatRequestRecord(r, format_, std::chrono::system_clock::now());
  line += '\n';
  std::lock_guard<std::mutex> lk(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace rg::server
