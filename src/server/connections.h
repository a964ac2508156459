// The connections of the HTTP server, between cpp-httplib's accept loop and
// its request parser. cpp-httplib (0.11) gives every connection a thread for
// as long as it is open and bounds a request only by a per-read timeout, so
// clients sending a head one byte per second (slowloris) or idling on
// keep-alive hold every thread; it also drops pipelined requests (each
// request's stream buffers bytes that the next one never sees). Here:
//   - one poller thread receives every request's head and Content-Length
//     body, non-blocking, under a deadline for the whole request
//     (--request-timeout, from its first byte; 408 after it) and a cap on
//     connections per client address (503 beyond it), with the framing
//     checks of http_head.h answered at once (413 before any body is read);
//   - only a request received in full takes a thread (up to max_workers,
//     created on demand; a thread that cannot be created refuses that
//     request with 503 instead of aborting), which runs httplib on a stream
//     that first replays the bytes already received;
//   - bytes after a request stay with the connection for the next one.
// Chunked bodies are read by the thread, under the same deadline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http_head.h"

namespace httplib {
class Stream;
}

namespace rg::server {

struct ConnectionOptions {
  HeadLimits head;
  int max_workers = 512;             // requests served at once (threads)
  int max_per_ip = 128;              // open connections per client address; 0 = no cap
  int max_open = 4096;               // open connections in all (beyond: closed at once)
  double request_timeout = 30;       // seconds for a request's head and body, from its first byte
  double keep_alive_timeout = 5;     // seconds a connection may wait idle for its next request
  double write_timeout = 10;         // seconds one write may block
  size_t max_requests_per_connection = 1000;
};

class Connections {
 public:
  // Answers one request read from `stream` (httplib's process_request);
  // false, or connection_closed, ends the connection.
  using ServeFn = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;
  // A request answered here without reaching ServeFn (refused, timed out):
  // for the log and the error counters. method/target may be empty.
  using RefusedFn = std::function<void(int status, const std::string& message, const std::string& method,
                                       const std::string& target)>;

  Connections(ConnectionOptions opt, ServeFn serve, RefusedFn refused);
  ~Connections();
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  // Starts the poller thread; rg::Error if it cannot be created.
  void Start();
  // A new connection from the accept loop; takes ownership of `fd`.
  void Add(int fd);
  // Closes every connection that is not being answered right now (idle,
  // half-received, waiting for a thread), lets the requests being answered
  // finish, and joins every thread. Idempotent.
  void Shutdown();

  // The socket of the request this thread is answering, or -1 (to notice a
  // client that goes away while its request is generated).
  static int CurrentFd();

  int open_connections() const;

 private:
  struct Conn;
  using ConnPtr = std::unique_ptr<Conn>;

  void PollLoop();
  void WorkLoop();
  // Poller: what the buffered bytes of `c` allow; false once `c` left the
  // poller (dispatched or closed).
  bool Advance(ConnPtr& c);
  void ReadFrom(ConnPtr& c);
  void Refuse(Conn& c, int status, const std::string& message);
  // To a worker (null), or back with a refusal to send when no thread can
  // take it.
  ConnPtr Dispatch(ConnPtr c);
  void Serve(ConnPtr c);
  void Close(ConnPtr c);
  void Wake();

  const ConnectionOptions opt_;
  const ServeFn serve_;
  const RefusedFn refused_;

  int max_open_;  // opt_.max_open within the descriptor limit

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  bool stopping_ = false;
  std::atomic<bool> stop_flag_{false};  // stopping_, for reads in progress
  std::vector<ConnPtr> incoming_;  // new, and back from a worker: for the poller
  std::deque<ConnPtr> ready_;      // received in full: for a worker
  std::map<std::string, int> per_ip_;
  int open_ = 0;
  int workers_ = 0, idle_workers_ = 0;
  std::vector<std::thread> threads_;  // the poller and every worker

  std::vector<ConnPtr> polled_;  // poller thread only
  int wake_fd_ = -1;             // eventfd: incoming_ or stopping_ changed
};

}  // namespace rg::server
