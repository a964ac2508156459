// Ctrl-C for the interactive commands: SIGINT sets a flag (the engine
// cancels the running request when it sees it) instead of killing the
// process, so a reply can be stopped and the stats still printed. A second
// Ctrl-C while the same request runs exits at once (status 130).
#pragma once

#include <signal.h>

#include <atomic>

namespace rg::cli {

// Set by SIGINT while a SigintScope is alive.
std::atomic<bool>& InterruptFlag();
// While true, a second SIGINT (flag already set) exits the process.
std::atomic<bool>& InterruptExitsOnSecond();

// Installs the handler for its lifetime.
class SigintScope {
 public:
  SigintScope();
  ~SigintScope();

 private:
  struct sigaction old_ {};
};

// Blocks SIGINT in the calling thread while alive; threads created meanwhile
// (the compute pool, the engine) inherit the mask, so the signal always
// reaches the main thread and interrupts its blocking reads.
class BlockSigint {
 public:
  BlockSigint();
  ~BlockSigint();

 private:
  sigset_t old_;
};

}  // namespace rg::cli
