#include "server/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <httplib.h>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/connections.h"
#include "server/cors.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/tokenize.h"

namespace rg::server {

namespace {

using Clock = std::chrono::steady_clock;

// The accept loop only hands each socket to Connections (a few system
// calls); threads are taken per request there, not per connection.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// True once the client has closed (or reset) its side of the connection.
bool PeerGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

const char* StatusText(int status) {
  switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 500: return "internal server error";
    case 503: return "service unavailable";
    default: return "error";
  }
}

// httplib's server with the connection layer of connections.h in front of
// its request parser, and a listening socket of our own.
class Server : public httplib::Server {
 public:
  Connections* connections = nullptr;

  // Answers one request from `strm` (httplib's parser and routes).
  bool Serve(httplib::Stream& strm, bool close_connection, bool& connection_closed) {
    return process_request(strm, close_connection, connection_closed, nullptr);
  }

  // httplib's sockets set SO_REUSEPORT, which lets a second server bind a
  // port in use and take part of its traffic: this one sets only
  // SO_REUSEADDR (restarts need not wait out TIME_WAIT), so a port in use is
  // an error, and listens with a real backlog (httplib's is 5). Returns the
  // bound port; rg::Error naming the address and why.
  int Listen(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
      Fail("serve: cannot listen on ", host, ":", port, ": ", gai_strerror(rc));
    int err = 0;
    int fd = -1;
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        err = errno;
        continue;
      }
      const int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
        err = errno;
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(res);
    if (fd < 0)
      Fail("serve: cannot listen on ", host, ":", port, ": ", std::strerror(err),
           err == EADDRINUSE ? " (another server listens there)" : "");
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    svr_sock_ = fd;  // what bind_to_port would have set: listen_after_bind() serves it
    return a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port)
                                   : ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    connections->Add(sock);
    return true;
  }
};

// "Bearer KEY", the scheme in any case (RFC 9110: case-insensitive), and the
// key compared in constant time.
bool BearerMatches(const std::string& header, const std::string& key) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || header[kScheme.size()] != ' ') return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  size_t p = kScheme.size();
  while (p < header.size() && header[p] == ' ') ++p;
  const std::string_view got = std::string_view(header).substr(p);
  unsigned diff = got.size() != key.size();
  for (size_t i = 0; i < key.size(); ++i) diff |= unsigned(i < got.size() ? got[i] : 0) ^ unsigned(key[i]);
  return diff == 0;
}

ConnectionOptions ConnectionOptionsOf(const HttpOptions& o) {
  ConnectionOptions c;
  c.head.max_body_bytes = o.limits.max_body_bytes;
  c.max_workers = o.max_connections;
  c.max_per_ip = o.max_connections_per_ip;
  c.request_timeout = o.request_timeout_seconds;
  c.keep_alive_timeout = o.keep_alive_seconds;
  c.write_timeout = o.write_timeout_seconds;
  return c;
}

}  // namespace

struct HttpServer::Impl {
  Engine& engine;
  ModelInfo model;
  HttpOptions opt;
  CorsPolicy cors;
  Metrics metrics;
  RequestLog log;  // before the connections: their threads log
  Server svr;
  Connections connections;
  std::atomic<bool> draining{false};
  std::atomic<bool> stop_requested{false}, finished{false};
  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> http_requests{0}, http_errors{0}, client_disconnects{0};
  Clock::time_point started = Clock::now();

  Impl(Engine& e, ModelInfo m, HttpOptions o)
      : engine(e),
        model(std::move(m)),
        opt(std::move(o)),
        cors(opt.cors_origins),
        log(opt.log_format, opt.log_requests),
        connections(
            ConnectionOptionsOf(opt),
            [this](httplib::Stream& s, bool close, bool& closed) { return svr.Serve(s, close, closed); },
            [this](int status, const std::string& msg, const std::string& method, const std::string& target) {
              ++http_requests;
              ++http_errors;
              RequestRecord r;
              r.method = method.empty() ? "-" : method;
              r.path = target.empty() ? "-" : target;
              r.status = status;
              r.message = msg;
              Record(r);
            }) {
    svr.connections = &connections;
  }

  // Every answered request once: counted for /metrics and logged (except
  // successful polls of /health and /metrics). The method and path are the
  // client's (percent-decoded): made printable, so one line whatever they hold.
  void Record(RequestRecord r) {
    r.method = Printable(r.method, 16);
    r.path = Printable(r.path, 200);
    const std::string endpoint = EndpointName(r.path);
    metrics.CountRequest(endpoint, r.status);
    if (r.status < 400 && (endpoint == "health" || endpoint == "metrics")) return;
    log.Write(r);
  }

  void Log(const httplib::Request& req, int status, const std::string& message) {
    RequestRecord r;
    r.method = req.method;
    r.path = req.path;
    r.status = status;
    r.message = message;
    Record(r);
  }

  // A generation request's record, once its job is done (or abandoned).
  void RecordJob(const std::string& method, const std::string& path, int status, const Job& job, double seconds) {
    RequestRecord r;
    r.method = method;
    r.path = path;
    r.status = status;
    r.stream = job.request().stream;
    r.generation = true;
    const Job::Usage u = job.GetUsage();
    r.prompt_tokens = u.prompt;
    r.cached_tokens = u.cached;
    r.generated_tokens = u.generated;
    r.first_token_seconds = u.first_token_seconds;
    r.decode_tokens_per_second = u.decode_tokens_per_second;
    r.total_seconds = seconds;
    r.ignored_fields = job.request().ignored_fields;
    if (status == 499) r.message = "client gone";
    Record(r);
  }

  void SendError(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
    ++http_errors;
    res.status = e.status;
    if (e.status == 503) res.set_header("Retry-After", "1");
    res.set_content(Dump(ErrorJson(e)), "application/json");
    Log(req, e.status, e.message);
  }

  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    if (opt.api_key.empty()) return true;
    if (BearerMatches(req.get_header_value("Authorization"), opt.api_key)) return true;
    SendError(req, res, ApiError(401, "invalid or missing API key (Authorization: Bearer ...)", "", "invalid_request_error",
                                 "invalid_api_key"));
    return false;
  }

  json ModelJson() const {
    return json{{"id", model.id}, {"object", "model"}, {"created", model.created}, {"owned_by", "rgemma"}};
  }

  void Health(const httplib::Request&, httplib::Response& res) {
    const EngineStats s = engine.Stats();
    const bool drain = draining.load() || s.draining;
    json j = {{"status", drain ? "draining" : "ok"},
              {"model", model.id},
              {"slots_total", s.slots_total},
              {"slots_busy", s.slots_busy},
              {"slots_free", s.slots_total - s.slots_busy},
              {"queued", s.queued},
              {"max_queue", s.max_queue},
              {"in_flight", in_flight.load()},
              {"sequences",
               {{"submitted", s.submitted},
                {"rejected", s.rejected},
                {"completed", s.completed},
                {"cancelled", s.cancelled},
                {"errors", s.errors}}},
              {"tokens", {{"prompt", s.prompt_tokens}, {"cached", s.cached_tokens}, {"generated", s.generated_tokens}}},
              {"steps", s.steps},
              {"busy_seconds", s.busy_seconds},
              {"http", {{"requests", http_requests.load()}, {"errors", http_errors.load()},
                        {"client_disconnects", client_disconnects.load()},
                        {"open_connections", connections.open_connections()}}},
              {"uptime_seconds", std::chrono::duration<double>(Clock::now() - started).count()},
              {"has_tokenizer", model.tokenizer != nullptr}};
    if (StateCache* cache = engine.cache()) {
      const StateCacheStats c = cache->Stats();
      json stores = json::array();
      for (const auto& [name, status] : c.stores) stores.push_back({{"name", name}, {"status", status}});
      j["cache"] = {{"entries", c.entries},
                    {"bytes", c.bytes},
                    {"budget_bytes", c.budget_bytes},
                    {"lookups", c.lookups},
                    {"hits", c.hits},
                    {"misses", c.lookups - c.hits},
                    {"hit_tokens", c.hit_tokens},
                    {"inserts", c.inserts},
                    {"evictions", c.evictions},
                    {"store_fetches", c.store_fetches},
                    {"store_hits", c.store_hits},
                    {"store_puts", c.store_puts},
                    {"store_dropped", c.store_dropped},
                    {"store_rejected", c.store_rejected},
                    {"stores", std::move(stores)}};
    }
    res.status = drain ? 503 : 200;
    res.set_content(Dump(j), "application/json");
  }

  // Reads the body ourselves: httplib bounds Content-Length bodies
  // (set_payload_max_length) but not chunked ones.
  void Post(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader, Endpoint ep) {
    ++http_requests;
    std::string body;
    if (ReadBody(req, res, reader, &body)) Generate(req, res, body, ep);
  }

  // /tokenize and /detokenize.
  void TokenizeRoute(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                 bool detok) {
    ++http_requests;
    if (!Authorized(req, res)) return;
    std::string body;
    if (!ReadBody(req, res, reader, &body)) return;
    try {
      const json j = ParseJsonBody(body, opt.limits);
      res.set_content(Dump(detok ? Detokenize(j, model) : Tokenize(j, model, opt.limits)), "application/json");
    } catch (const ApiError& e) {
      SendError(req, res, e);
    } catch (const std::exception& e) {
      SendError(req, res, ApiError(500, e.what()));
    }
  }

  // Reads the whole body within the limit; on failure answers and returns false.
  bool ReadBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                std::string* out) {
    std::string& body = *out;
    bool too_big = false;
    const size_t max = opt.limits.max_body_bytes;
    const bool read_ok = reader([&](const char* data, size_t n) {
      if (body.size() + n > max) {
        too_big = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    // httplib itself refuses a Content-Length above the limit without reading.
    if (!too_big && req.has_header("Content-Length")) {
      const std::string cl = req.get_header_value("Content-Length");
      too_big = cl.size() > 19 || std::strtoull(cl.c_str(), nullptr, 10) > max;
    }
    if (!read_ok && !too_big) {
      res.set_header("Connection", "close");
      SendError(req, res, ApiError(400, "could not read the request body"));
      return false;
    }
    if (too_big) {
      res.set_header("Connection", "close");
      SendError(req, res, ApiError(413, StrCat("the request body is larger than this server's limit of ", max,
                                               " bytes (--max-body-bytes)")));
      return false;
    }
    return true;
  }

  void Generate(const httplib::Request& req, httplib::Response& res, const std::string& req_body, Endpoint ep) {
    if (!Authorized(req, res)) return;
    std::shared_ptr<Job> job;
    // Counted before the engine sees the request, so /metrics and /health never
    // show its busy slots without it (a scrape between the two raced in CI).
    // An error answer below uncounts it; an accepted one is uncounted when answered.
    ++in_flight;
    struct Uncount {
      std::atomic<int>& n;
      bool armed = true;
      ~Uncount() { if (armed) --n; }
    } uncount{in_flight};
    try {
      if (draining.load()) throw ApiError(503, "the server is shutting down", "", "server_error", "shutting_down");
      const json body = ParseJsonBody(req_body, opt.limits);
      ParsedRequest pr = ep == Endpoint::kChat ? ParseChatRequest(body, model, opt.limits)
                                               : ParseCompletionRequest(body, model, opt.limits);
      const EngineOptions& so = engine.options();
      if (pr.sequences() > int64_t(so.parallel) + so.max_queue)
        throw ApiError(400, StrCat("the request needs ", pr.sequences(), " sequences (prompts x n) but this server runs at most ",
                                   so.parallel, " at once with ", so.max_queue, " waiting"), "n");
      job = Job::Create(std::move(pr), model, ep == Endpoint::kChat ? ChatShape(model) : CompletionShape(model));
      std::vector<std::shared_ptr<RequestHandle>> handles;
      Engine::Admission a;
      try {
        std::vector<Request> reqs = job->MakeRequests();
        for (Request& r : reqs) r.report_after_store = opt.report_after_store;
        a = engine.Submit(std::move(reqs), &handles);
      } catch (const rg::Error& e) {
        throw ApiError(400, e.what());
      }
      if (a == Engine::Admission::kQueueFull)
        throw ApiError(503, "the server is busy: the request queue is full, retry later", "", "server_error", "queue_full");
      if (a == Engine::Admission::kDraining)
        throw ApiError(503, "the server is shutting down", "", "server_error", "shutting_down");
      job->SetHandles(std::move(handles));
    } catch (const ApiError& e) {
      SendError(req, res, e);
      return;
    } catch (const std::bad_alloc&) {
      SendError(req, res, ApiError(500, "out of memory"));
      return;
    } catch (const std::exception& e) {
      SendError(req, res, ApiError(500, e.what()));
      return;
    }

    uncount.armed = false;
    const auto t0 = Clock::now();
    const int fd = Connections::CurrentFd();
    if (!job->request().stream) {
      bool gone = false;
      while (!job->WaitFor(0.05)) {
        if (!gone && PeerGone(fd)) {
          gone = true;
          ++client_disconnects;
          job->Cancel(engine);
        }
      }
      auto [status, body] = job->FinalResponse();
      if (status != 200) ++http_errors;
      res.status = status;
      res.set_content(body, "application/json");
      RecordJob(req.method, req.path, gone ? 499 : status, *job, std::chrono::duration<double>(Clock::now() - t0).count());
      --in_flight;
      return;
    }

    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto gone = std::make_shared<bool>(false);
    // Set once the last event ("data: [DONE]") is written: a client that
    // closes right then has its whole answer, even if the chunked encoding's
    // final empty chunk can no longer be sent.
    auto delivered = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, fd, gone, delivered](size_t, httplib::DataSink& sink) {
          for (;;) {
            const bool done = job->WaitFor(0.05);
            const std::string bytes = job->TakeStreamBytes();
            if (!bytes.empty()) {
              if (!sink.write(bytes.data(), bytes.size())) {
                *gone = true;
                return false;
              }
              if (done) *delivered = true;
              return true;
            }
            if (done) {
              sink.done();
              return true;
            }
            if (PeerGone(fd)) {
              *gone = true;
              return false;
            }
          }
        },
        [this, job, gone, delivered, t0, path = req.path, method = req.method](bool finished) {
          const bool success = *delivered || (finished && !*gone);
          if (!success) {
            ++client_disconnects;
            job->Cancel(engine);
          }
          // The job may still be finishing (cancelled between steps); the
          // slot is released by the scheduler either way.
          RecordJob(method, path, success && !*gone ? 200 : 499, *job,
                    std::chrono::duration<double>(Clock::now() - t0).count());
          --in_flight;
        });
  }
};

HttpServer::HttpServer(Engine& engine, ModelInfo model, HttpOptions opt)
    : impl_(std::make_unique<Impl>(engine, std::move(model), std::move(opt))) {
  Impl* I = impl_.get();
  httplib::Server& svr = I->svr;
  svr.new_task_queue = [] { return new InlineQueue(); };
  svr.set_payload_max_length(I->opt.limits.max_body_bytes);
  // Only what the Keep-Alive response header says: Connections enforces both.
  svr.set_keep_alive_timeout(I->opt.keep_alive_seconds);
  svr.set_keep_alive_max_count(ConnectionOptions{}.max_requests_per_connection);

  svr.Get("/health", [I](const httplib::Request& q, httplib::Response& r) { I->Health(q, r); });
  auto models = [I](const httplib::Request& q, httplib::Response& r) {
    if (!I->Authorized(q, r)) return;
    r.set_content(Dump(json{{"object", "list"}, {"data", json::array({I->ModelJson()})}}), "application/json");
  };
  svr.Get("/v1/models", models);
  svr.Get("/models", models);
  svr.Get(R"(/v1/models/(.+))", [I](const httplib::Request& q, httplib::Response& r) {
    if (!I->Authorized(q, r)) return;
    if (q.matches[1] != I->model.id) {
      I->SendError(q, r, ApiError(404, "The model '" + Printable(std::string(q.matches[1]), 80) + "' does not exist (this server has '" +
                                           I->model.id + "')", "model", "invalid_request_error", "model_not_found"));
      return;
    }
    r.set_content(Dump(I->ModelJson()), "application/json");
  });
  for (const char* p : {"/v1/completions", "/completions"})
    svr.Post(p, [I](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      I->Post(q, r, c, Endpoint::kCompletions);
    });
  for (const char* p : {"/v1/chat/completions", "/chat/completions"})
    svr.Post(p, [I](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      I->Post(q, r, c, Endpoint::kChat);
    });
  svr.Get("/metrics", [I](const httplib::Request&, httplib::Response& r) {
    const StateCacheStats c = I->engine.cache() ? I->engine.cache()->Stats() : StateCacheStats{};
    r.set_content(I->metrics.Render(I->engine.Stats(), I->engine.cache() ? &c : nullptr, I->in_flight.load()),
                  kMetricsContentType);
  });
  svr.Options(".*", [I](const httplib::Request& q, httplib::Response& r) {
    I->cors.Preflight(q, r);
    if (r.status >= 400) I->Log(q, r.status, "CORS preflight from an origin not allowed (--cors-origin)");
  });
  // Every response: the CORS headers, and the log record of those that are
  // not recorded where they are answered (successes off the generation routes).
  svr.set_post_routing_handler([I](const httplib::Request& q, httplib::Response& r) {
    I->cors.AddHeaders(q, r);
    const std::string endpoint = EndpointName(q.path);
    const bool generation = q.method == "POST" && (endpoint == "completions" || endpoint == "chat_completions");
    if (r.status < 400 && !generation) I->Log(q, r.status, "");
  });
  svr.Get("/tokenizer_info", [I](const httplib::Request& q, httplib::Response& r) {
    try {
      r.set_content(Dump(TokenizerInfo(I->model)), "application/json");
    } catch (const ApiError& e) {
      I->SendError(q, r, e);
    }
  });
  svr.Post("/tokenize", [I](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
    I->TokenizeRoute(q, r, c, false);
  });
  svr.Post("/detokenize", [I](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
    I->TokenizeRoute(q, r, c, true);
  });
  for (const char* p : {"/v1/completions", "/completions", "/v1/chat/completions", "/chat/completions"})
    svr.Get(p, [I](const httplib::Request& q, httplib::Response& r) {
      I->SendError(q, r, ApiError(405, "use POST for " + q.path));
    });

  svr.set_error_handler([I](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return;
    std::string msg = StatusText(r.status);
    if (r.status == 404) msg = "no such endpoint: " + q.method + " " + q.path;
    if (r.status == 413)
      msg = StrCat("the request body is larger than this server's limit of ", I->opt.limits.max_body_bytes,
                   " bytes (--max-body-bytes)");
    ++I->http_errors;
    r.set_content(Dump(ErrorJson(ApiError(r.status, msg))), "application/json");
    I->Log(q, r.status, msg);
  });
  svr.set_exception_handler([I](const httplib::Request& q, httplib::Response& r, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    r.status = 500;
    r.set_content(Dump(ErrorJson(ApiError(500, msg))), "application/json");
    I->Log(q, 500, msg);
  });
}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::Bind() {
  const int port = impl_->svr.Listen(impl_->opt.host, impl_->opt.port);
  impl_->connections.Start();
  return port;
}

void HttpServer::Run() {
  if (!impl_->stop_requested.load()) impl_->svr.listen_after_bind();
  impl_->connections.Shutdown();
  impl_->finished = true;
}

bool HttpServer::finished() const { return impl_->finished.load(); }

void HttpServer::BeginDrain() { impl_->draining = true; }

bool HttpServer::WaitIdle(double timeout_seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_seconds);
  for (;;) {
    const EngineStats s = impl_->engine.Stats();
    if (impl_->in_flight.load() == 0 && s.slots_busy == 0 && s.queued == 0) return true;
    if (timeout_seconds >= 0 && Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void HttpServer::Stop() {
  impl_->stop_requested = true;
  if (impl_->svr.is_running()) impl_->svr.stop();
}

int HttpServer::in_flight() const { return impl_->in_flight.load(); }

}  // namespace rg::server
