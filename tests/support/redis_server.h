// A real redis-server for a test: started on a free loopback port with no
// persistence, stopped (SIGKILL) at the end. Start/Stop may be repeated to
// simulate an outage on the same port.
#pragma once

#include <sys/types.h>

#include <string>

namespace rg::test {

class RedisServer {
 public:
  RedisServer();  // picks a port; does not start
  ~RedisServer();
  // Starts redis-server and waits until it answers (fails the test if not).
  bool Start();
  void Stop();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  int port_;
  pid_t pid_ = -1;
};

// A loopback TCP port nothing listens on right now.
int FreePort();

}  // namespace rg::test
