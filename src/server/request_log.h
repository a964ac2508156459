// The request log of `rgemma serve`: one line per request on stderr, as text
// or as one JSON object per line (--log-format json, for log collectors).
//   text: 2025-06-01T12:00:00.123Z POST /v1/chat/completions 200 prompt=12 cached=0 generated=40
//         first_token=0.052s decode=25.3tok/s total=1.630s
//   json: {"time":"2025-06-01T12:00:00.123Z","method":"POST","path":"/v1/chat/completions",
//          "endpoint":"chat_completions","status":200,"prompt_tokens":12,...}
// Successful polls of /health and /metrics are not logged (a load balancer
// or Prometheus asks every few seconds); they are still counted in /metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace rg::server {

enum class LogFormat { kText, kJson };
// "text" | "json"; rg::Error otherwise.
LogFormat ParseLogFormat(std::string_view s);

struct RequestRecord {
  std::string method, path;
  int status = 0;  // 499: the client went away before the answer was complete
  bool stream = false;
  bool generation = false;        // the token fields below are set
  int64_t prompt_tokens = 0;      // usage, as answered
  int64_t cached_tokens = 0;
  int64_t generated_tokens = 0;
  double first_token_seconds = -1;       // submitted -> first token (< 0: none)
  double decode_tokens_per_second = -1;  // after the first token (< 0: not measured)
  double total_seconds = -1;             // the whole request (< 0: not measured)
  std::string message;                   // the error answered, or a note
  std::vector<std::string> ignored_fields;  // unknown request fields that were ignored
};

// The route's name for logs and metrics: "completions", "chat_completions",
// "models", "health", "metrics", "tokenize", "detokenize", "tokenizer_info",
// or "other".
const char* EndpointName(std::string_view path);

// One line, without the newline. `now` is the timestamp (UTC, milliseconds).
std::string FormatRequestRecord(const RequestRecord& r, LogFormat format, std::chrono::system_clock::time_point now);

// Writes records to stderr, one whole line at a time.
class RequestLog {
 public:
  RequestLog(LogFormat format, bool enabled) : format_(format), enabled_(enabled) {}
  void Write(const RequestRecord& r);

 private:
  LogFormat format_;
  bool enabled_;
  std::mutex mu_;
};

}  // namespace rg::server
