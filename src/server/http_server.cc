#include "server/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <httplib.h>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/cors.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/tokenize.h"

namespace rg::server {

namespace {

using Clock = std::chrono::steady_clock;

// Connection threads created on demand up to a cap (httplib's default pool is
// fixed at a few threads, and every waiting request holds one).
class ElasticQueue : public httplib::TaskQueue {
 public:
  explicit ElasticQueue(int max_threads) : max_(std::max(1, max_threads)) {}
  ~ElasticQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lk(mu_);
    jobs_.push_back(std::move(fn));
    // Every waiting connection gets a thread (up to the cap): a request
    // holds its thread for as long as it generates.
    if (int(jobs_.size()) > idle_ && int(threads_.size()) < max_) {
      ++idle_;
      threads_.emplace_back([this] { Work(); });
    }
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and nothing left
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      lk.unlock();
      try {
        fn();
      } catch (...) {
      }
      lk.lock();
      ++idle_;
    }
  }

  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stopping_ = false;
};

int SockPort(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

// The socket of the connection that carried `req` (httplib 0.11 does not
// expose it): the one whose peer and local ports match. -1 if not found.
int FindConnectionFd(const httplib::Request& req) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (!end || *end || fd < 0 || fd == dirfd(d)) continue;
    sockaddr_storage peer{}, local{};
    socklen_t pl = sizeof peer, ll = sizeof local;
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    if (SockPort(peer) != req.remote_port) continue;
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (SockPort(local) != req.local_port) continue;
    char host[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&peer), pl, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0)
      continue;
    if (req.remote_addr != host) continue;
    found = int(fd);
    break;
  }
  closedir(d);
  return found;
}

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

// httplib listens with a backlog of 5; a burst of clients would see dropped
// SYNs (1 s retries). Linux lets listen() be called again to raise it.
class Server : public httplib::Server {
 public:
  void RaiseBacklog(int n) {
    const int fd = int(svr_sock_.load());
    if (fd >= 0) ::listen(fd, n);
  }
};

}  // namespace

struct HttpServer::Impl {
  Engine& engine;
  ModelInfo model;
  HttpOptions opt;
  Server svr;
  std::atomic<bool> draining{false};
  std::atomic<bool> stop_requested{false}, finished{false};
  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> http_requests{0}, http_errors{0}, client_disconnects{0};
  Clock::time_point started = Clock::now();
  CorsPolicy cors;
  Metrics metrics;
  RequestLog log;

  Impl(Engine& e, ModelInfo m, HttpOptions o)
      : engine(e), model(std::move(m)), opt(std::move(o)), cors(opt.cors_origins),
        log(opt.log_format, opt.log_requests) {}

  // Every answered request once: counted for /metrics and logged (except
  // successful polls of /health and /metrics).
  void Record(const RequestRecord& r) {
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
    if (req.get_header_value("Authorization") == "Bearer " + opt.api_key) return true;
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
                        {"client_disconnects", client_disconnects.load()}}},
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
        a = engine.Submit(job->MakeRequests(), &handles);
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

    ++in_flight;
    const auto t0 = Clock::now();
    const int fd = FindConnectionFd(req);
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
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, fd, gone](size_t, httplib::DataSink& sink) {
          for (;;) {
            const bool done = job->WaitFor(0.05);
            const std::string bytes = job->TakeStreamBytes();
            if (!bytes.empty()) {
              if (!sink.write(bytes.data(), bytes.size())) {
                *gone = true;
                return false;
              }
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
        [this, job, gone, t0, path = req.path, method = req.method](bool success) {
          if (!success || *gone) {
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
  const int max_conn = I->opt.max_connections;
  svr.new_task_queue = [max_conn] { return new ElasticQueue(max_conn); };
  svr.set_payload_max_length(I->opt.limits.max_body_bytes);
  svr.set_read_timeout(I->opt.read_timeout_seconds, 0);
  svr.set_write_timeout(I->opt.write_timeout_seconds, 0);
  svr.set_keep_alive_timeout(I->opt.keep_alive_seconds);
  svr.set_keep_alive_max_count(1000);
  svr.set_tcp_nodelay(true);

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
      I->SendError(q, r, ApiError(404, "The model '" + std::string(q.matches[1]) + "' does not exist (this server has '" +
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
  Server& svr = impl_->svr;
  const std::string& host = impl_->opt.host;
  int port = impl_->opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(host);
    RG_CHECK(port > 0, "serve: cannot bind to ", host, " (any port)");
  } else {
    RG_CHECK(svr.bind_to_port(host, port), "serve: cannot bind to ", host, ":", port,
             " (in use, or not an address of this machine)");
  }
  svr.RaiseBacklog(1024);
  return port;
}

void HttpServer::Run() {
  if (!impl_->stop_requested.load()) impl_->svr.listen_after_bind();
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
