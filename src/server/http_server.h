// The HTTP front of `rgemma serve` (cpp-httplib): OpenAI-compatible routes on
// top of the generation engine (generate/engine.h).
//   GET  /health                 status, slot/queue/token counters, state cache (503 while draining)
//   GET  /v1/models              the one model served; GET /v1/models/{id}
//   POST /v1/completions         (also /completions)
//   POST /v1/chat/completions    (also /chat/completions)
//   GET  /tokenizer_info, POST /tokenize, POST /detokenize   (vLLM-compatible;
//        lm-evaluation-harness's "remote" tokenizer backend uses them)
//   GET  /metrics                Prometheus text format (server/metrics.h)
//   OPTIONS *                    CORS preflights (server/cors.h, --cors-origin)
// Errors are OpenAI error JSON with the matching status: 400 invalid request,
// 401 bad API key, 404 unknown route, 405 wrong method, 413 body too large,
// 500 generation failure, 503 queue full / draining (with Retry-After).
//
// Connections are received by one poller thread (server/connections.h:
// deadlines for whole requests, a cap per client address, pipelining); a
// request received in full gets a thread (created on demand, up to
// max_connections) that it holds while it waits for its sequences. A client
// that goes away (socket closed, or a failed write while streaming) cancels
// its sequences, which frees their slots at the next step.
//
// With an API key, every route needs "Authorization: Bearer KEY" except
// GET /health and GET /tokenizer_info, which stay open (for load balancers
// and tokenizer clients; they reveal no prompts or outputs).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "generate/engine.h"
#include "server/request.h"
#include "server/request_log.h"

namespace rg::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                // 0 = any free port (see Bind)
  ServerLimits limits;
  std::string api_key;            // non-empty: require "Authorization: Bearer <key>" (see above)
  int max_connections = 512;      // requests answered at once (threads)
  int max_connections_per_ip = 128;       // open connections per client address (0 = no cap)
  double request_timeout_seconds = 30;    // a request's head and body must arrive within this
  int write_timeout_seconds = 10;
  int keep_alive_seconds = 5;     // an idle connection is closed after this
  bool log_requests = true;       // one line per request on stderr (server/request_log.h)
  LogFormat log_format = LogFormat::kText;
  std::string cors_origins;       // --cors-origin: comma-separated origins, * = any, empty = none
  // A shared state store is configured: each response ends once its final
  // snapshot is there (Request::report_after_store).
  bool report_after_store = false;
};

class HttpServer {
 public:
  HttpServer(Engine& engine, ModelInfo model, HttpOptions opt);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port. Throws rg::Error if it
  // cannot (naming the address and why: "address in use" for a port another
  // server listens on).
  int Bind();
  // Serves until Stop(); blocks. Returns once every connection has closed.
  void Run();

  // Graceful shutdown, step 1: answer new generation requests with 503 (and
  // /health with "draining"). In-flight requests continue.
  void BeginDrain();
  // Step 2: wait until every accepted request has been answered completely
  // (streams included), at most `timeout_seconds`. Returns true if all were.
  bool WaitIdle(double timeout_seconds);
  // Step 3: close the listening socket; Run() returns. If Run() has not
  // started listening yet, it returns at once; call Stop() until finished()
  // to be sure (a call racing with Run()'s start may be missed).
  void Stop();
  bool finished() const;  // Run() has returned

  int in_flight() const;  // requests accepted and not yet fully answered

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rg::server
