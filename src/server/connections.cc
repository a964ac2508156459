#include "server/connections.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <httplib.h>
#include <system_error>

#include "core/error.h"
#include "server/openai_json.h"

namespace rg::server {

namespace {

using Clock = std::chrono::steady_clock;

thread_local int t_current_fd = -1;

// A refused or finished connection stays open this long after our last
// byte, reading and discarding, so that closing it does not reset the
// connection (which can destroy the answer before the client reads it).
constexpr auto kLinger = std::chrono::seconds(2);

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

int MillisUntil(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
  return int(std::min<int64_t>(ms, 60'000));
}

// Numeric address and port of a socket address.
void AddressOf(const sockaddr_storage& a, std::string* ip, int* port) {
  char host[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    *port = ntohs(in.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    *port = ntohs(in6.sin6_port);
  }
  *ip = host;
}

const char* Reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

// Sends what the socket takes now; the rest of a refusal is not worth a wait.
void SendNow(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t k = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    done += size_t(k);
  }
}

}  // namespace

struct Connections::Conn {
  enum class Phase {
    kIdle,    // waiting for the first byte of a request (keep-alive deadline)
    kHead,    // receiving the head (request deadline)
    kBody,    // head accepted, receiving the Content-Length body (request deadline)
    kLinger,  // answered, write side shut: discarding input until EOF
  };
  int fd = -1;
  std::string ip, local_ip;
  int port = 0, local_port = 0;
  bool counted = false;  // in per_ip_
  Phase phase = Phase::kIdle;
  Clock::time_point deadline;
  std::string buf;  // received and not yet answered (a pipelined request may follow this one)
  RequestHead head;
  size_t served = 0;
  int refuse_status = 0;  // set by Add: refuse at once
  std::string refuse_message;
};

// What httplib reads a request from and writes its answer to: the bytes the
// poller received, then (chunked bodies only) the socket, never past the
// end of a Content-Length request.
class ConnStream : public httplib::Stream {
 public:
  ConnStream(std::string& buf, int fd, size_t end, Clock::time_point deadline, double write_timeout,
             const std::atomic<bool>& stop, const std::string& ip, int port, const std::string& local_ip,
             int local_port)
      : buf_(buf), fd_(fd), end_(end), deadline_(deadline), write_ms_(int(write_timeout * 1000)), stop_(stop),
        ip_(ip), local_ip_(local_ip), port_(port), local_port_(local_port) {}

  bool is_readable() const override {
    if (pos_ >= end_) return false;
    if (pos_ < buf_.size()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  bool is_writable() const override {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, write_ms_) > 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= end_) return 0;
    size = std::min(size, end_ - pos_);
    while (pos_ >= buf_.size()) {
      if (!Receive()) return -1;
      if (eof_) return 0;
    }
    const size_t n = std::min(size, buf_.size() - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    return ssize_t(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      const ssize_t k = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (k > 0) {
        done += size_t(k);
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, write_ms_) > 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL))) continue;
      }
      return -1;
    }
    return ssize_t(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = ip_;
    port = port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = local_ip_;
    port = local_port_;
  }
  socket_t socket() const override { return fd_; }

 private:
  // More bytes from the socket into buf_, within the request's deadline
  // (waits in slices so that a shutdown is noticed). False on timeout or error.
  bool Receive() {
    for (;;) {
      if (stop_.load()) return false;
      const auto now = Clock::now();
      if (now >= deadline_) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, std::min(MillisUntil(deadline_, now), 100)) <= 0) continue;
      char tmp[16384];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf_.append(tmp, size_t(n));
        return true;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    }
  }

  std::string& buf_;
  int fd_;
  size_t end_, pos_ = 0;
  Clock::time_point deadline_;
  int write_ms_;
  const std::atomic<bool>& stop_;
  const std::string &ip_, &local_ip_;
  int port_, local_port_;
  bool eof_ = false;
};

Connections::Connections(ConnectionOptions opt, ServeFn serve, RefusedFn refused)
    : opt_(opt), serve_(std::move(serve)), refused_(std::move(refused)) {
  // Keep descriptors for the files the server opens besides its sockets.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    max_open_ = int(std::max<rlim_t>(16, std::min<rlim_t>(rlim_t(opt_.max_open), nofile.rlim_cur - std::min<rlim_t>(nofile.rlim_cur / 2, 64))));
  else
    max_open_ = opt_.max_open;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  RG_CHECK(wake_fd_ >= 0, "serve: cannot create an eventfd: ", std::strerror(errno));
}

Connections::~Connections() {
  Shutdown();
  ::close(wake_fd_);
}

void Connections::Start() {
  std::lock_guard<std::mutex> lk(mu_);
  try {
    threads_.emplace_back([this] { PollLoop(); });
  } catch (const std::system_error& e) {
    Fail("serve: cannot start the connection thread: ", e.what(), " (raise the limit on processes: ulimit -u)");
  }
}

int Connections::CurrentFd() { return t_current_fd; }

int Connections::open_connections() const {
  std::lock_guard<std::mutex> lk(mu_);
  return open_;
}

void Connections::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Connections::Add(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Conn>();
  c->fd = fd;
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) AddressOf(a, &c->ip, &c->port);
  len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) AddressOf(a, &c->local_ip, &c->local_port);
  c->deadline = Clock::now() + Seconds(opt_.keep_alive_timeout);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ || open_ >= max_open_) {
      ::close(fd);  // out of descriptors to spend: not even an answer
      return;
    }
    ++open_;
    int& n = per_ip_[c->ip];
    if (opt_.max_per_ip > 0 && n >= opt_.max_per_ip) {
      if (n == 0) per_ip_.erase(c->ip);
      c->refuse_status = 503;
      c->refuse_message = StrCat("too many connections from ", c->ip, " (this server accepts ", opt_.max_per_ip,
                                 " per client address: --max-connections-per-ip)");
    } else {
      ++n;
      c->counted = true;
    }
    incoming_.push_back(std::move(c));
  }
  Wake();
}

void Connections::Close(ConnPtr c) {
  ::close(c->fd);
  std::lock_guard<std::mutex> lk(mu_);
  --open_;
  if (c->counted) {
    auto it = per_ip_.find(c->ip);
    if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
  }
}

void Connections::Refuse(Conn& c, int status, const std::string& message) {
  if (refused_) refused_(status, message, c.head.method, c.head.target);
  const std::string body = Dump(ErrorJson(ApiError(status, message)));
  SendNow(c.fd, StrCat("HTTP/1.1 ", status, " ", Reason(status), "\r\nContent-Type: application/json\r\n",
                       status == 503 ? "Retry-After: 1\r\n" : "", "Content-Length: ", body.size(),
                       "\r\nConnection: close\r\n\r\n", body));
  ::shutdown(c.fd, SHUT_WR);
  c.phase = Conn::Phase::kLinger;
  c.buf.clear();
  c.deadline = Clock::now() + kLinger;
}

bool Connections::Advance(ConnPtr& c) {
  if (c->phase == Conn::Phase::kIdle) {
    if (c->buf.empty()) return true;
    c->phase = Conn::Phase::kHead;
    c->deadline = Clock::now() + Seconds(opt_.request_timeout);
  }
  if (c->phase == Conn::Phase::kHead) {
    c->head = ParseRequestHead(c->buf, opt_.head);
    if (c->head.state == RequestHead::State::kIncomplete) return true;
    if (c->head.state == RequestHead::State::kRefused) {
      Refuse(*c, c->head.status, c->head.error);
      return true;
    }
    if (c->head.expect_continue) {
      // Answered here, so httplib must not see the header (it would answer again).
      SendNow(c->fd, "HTTP/1.1 100 Continue\r\n\r\n");
      c->buf.erase(c->head.expect_begin, c->head.expect_end - c->head.expect_begin);
      c->head.head_bytes -= c->head.expect_end - c->head.expect_begin;
      c->head.expect_continue = false;
    }
    c->phase = Conn::Phase::kBody;
  }
  if (c->phase == Conn::Phase::kBody) {
    if (!c->head.chunked && c->buf.size() < c->head.head_bytes + c->head.content_length) return true;
    c = Dispatch(std::move(c));
    return c != nullptr;
  }
  return true;
}

void Connections::ReadFrom(ConnPtr& c) {
  char tmp[65536];
  const ssize_t n = ::recv(c->fd, tmp, sizeof tmp, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // the client closed (mid-request: it gave up) or the socket failed
    Close(std::move(c));
    return;
  }
  if (c->phase == Conn::Phase::kLinger) return;  // discarded
  c->buf.append(tmp, size_t(n));
  // The head is parsed again only when a line was completed: a head sent a
  // byte at a time must not cost a parse per byte.
  if (c->phase == Conn::Phase::kHead && !std::memchr(tmp, '\n', size_t(n))) return;
  if (!Advance(c)) c.reset();
}

Connections::ConnPtr Connections::Dispatch(ConnPtr c) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stopping_) {
    lk.unlock();
    Close(std::move(c));
    return nullptr;
  }
  ready_.push_back(std::move(c));
  if (idle_workers_ >= int(ready_.size())) {
    work_cv_.notify_one();
    return nullptr;
  }
  if (workers_ >= opt_.max_workers) return nullptr;  // waits for a thread to free up
  ++workers_;
  ++idle_workers_;
  try {
    threads_.emplace_back([this] { WorkLoop(); });
    return nullptr;
  } catch (const std::system_error& e) {
    // A process/thread limit: refuse this request, keep serving the others.
    --workers_;
    --idle_workers_;
    ConnPtr back = std::move(ready_.back());
    ready_.pop_back();
    lk.unlock();
    Refuse(*back, 503, StrCat("the server cannot start a thread for this request (", e.what(),
                              "): it is at its limit on processes/threads; retry later"));
    return back;
  }
}

void Connections::PollLoop() {
  std::vector<pollfd> fds;
  for (;;) {
    std::vector<ConnPtr> in;
    bool stop;
    {
      std::lock_guard<std::mutex> lk(mu_);
      in.swap(incoming_);
      stop = stopping_;
    }
    if (stop) {
      // Requests that have not started are not waited for.
      for (ConnPtr& c : in) Close(std::move(c));
      for (ConnPtr& c : polled_) Close(std::move(c));
      polled_.clear();
      return;
    }
    for (ConnPtr& c : in) {
      if (c->refuse_status) {
        Refuse(*c, c->refuse_status, c->refuse_message);
        polled_.push_back(std::move(c));
      } else if (Advance(c)) {  // back from a worker: a pipelined request may be buffered
        polled_.push_back(std::move(c));
      }
    }
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    Clock::time_point next = Clock::now() + std::chrono::seconds(60);
    for (const ConnPtr& c : polled_) {
      fds.push_back(pollfd{c->fd, POLLIN, 0});
      next = std::min(next, c->deadline);
    }
    ::poll(fds.data(), fds.size(), MillisUntil(next, Clock::now()));
    if (fds[0].revents) {
      uint64_t n;
      [[maybe_unused]] const ssize_t k = ::read(wake_fd_, &n, sizeof n);
    }
    for (size_t i = 0; i < polled_.size(); ++i) {
      ConnPtr& c = polled_[i];
      if (fds[i + 1].revents) ReadFrom(c);
      if (!c || Clock::now() < c->deadline) continue;
      switch (c->phase) {
        case Conn::Phase::kHead:
        case Conn::Phase::kBody:
          Refuse(*c, 408, StrCat("the request was not received in full within ", opt_.request_timeout,
                                 " s (--request-timeout)"));
          break;
        case Conn::Phase::kIdle:
        case Conn::Phase::kLinger:
          Close(std::move(c));
          break;
      }
    }
    std::erase_if(polled_, [](const ConnPtr& c) { return c == nullptr; });
  }
}

void Connections::WorkLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stopping_ || !ready_.empty(); });
    if (stopping_) {
      // Received in full but never started: closed, not waited for.
      while (!ready_.empty()) {
        ConnPtr c = std::move(ready_.front());
        ready_.pop_front();
        lk.unlock();
        Close(std::move(c));
        lk.lock();
      }
      return;
    }
    ConnPtr c = std::move(ready_.front());
    ready_.pop_front();
    --idle_workers_;
    lk.unlock();
    Serve(std::move(c));
    lk.lock();
    ++idle_workers_;
  }
}

void Connections::Serve(ConnPtr c) {
  const bool chunked = c->head.chunked;
  const size_t end = chunked ? SIZE_MAX : c->head.head_bytes + size_t(c->head.content_length);
  bool close_connection = c->served + 1 >= opt_.max_requests_per_connection || stop_flag_.load();
  bool closed = false, ok = false;
  t_current_fd = c->fd;
  {
    ConnStream stream(c->buf, c->fd, end, c->deadline, opt_.write_timeout, stop_flag_, c->ip, c->port, c->local_ip,
                      c->local_port);
    try {
      ok = serve_(stream, close_connection, closed);
    } catch (...) {
      ok = false;
    }
  }
  t_current_fd = -1;
  ++c->served;
  // After a chunked body the end of the request is httplib's to know: the
  // connection ends with it rather than guess where the next one starts.
  if (!ok || closed || close_connection || chunked) {
    ::shutdown(c->fd, SHUT_WR);
    c->phase = Conn::Phase::kLinger;
    c->buf.clear();
    c->deadline = Clock::now() + kLinger;
  } else {
    c->buf.erase(0, std::min(end, c->buf.size()));  // what follows is the next request
    c->phase = Conn::Phase::kIdle;
    c->head = RequestHead{};
    c->deadline = Clock::now() + Seconds(opt_.keep_alive_timeout);
  }
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (stopping_) {
      lk.unlock();
      Close(std::move(c));
      return;
    }
    incoming_.push_back(std::move(c));
  }
  Wake();
}

void Connections::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
    stop_flag_ = true;
    threads.swap(threads_);
  }
  work_cv_.notify_all();
  Wake();
  for (std::thread& t : threads)
    if (t.joinable()) t.join();
}

}  // namespace rg::server
