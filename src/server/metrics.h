// GET /metrics: the server's counters in the Prometheus text exposition
// format (version 0.0.4): HTTP requests by endpoint and status, tokens
// (prompt rows run, restored from the state cache, generated), prefill and
// decode speed, queue depth, busy slots, and the state cache's hits, misses
// and bytes. Counters end in _total; everything else is a gauge.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "generate/engine.h"

namespace rg::server {

// The content type Prometheus expects for this format.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class Metrics {
 public:
  // One answered HTTP request (endpoint: server/request_log.h EndpointName).
  void CountRequest(const std::string& endpoint, int status);

  // The exposition: the request counts, then the engine's and the cache's
  // counters (cache: null without a state cache), then in_flight.
  std::string Render(const EngineStats& engine, const StateCacheStats* cache, int in_flight) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) -> count
};

}  // namespace rg::server
