#include "cli/interrupt.h"

#include <pthread.h>
#include <unistd.h>

namespace rg::cli {

namespace {
// Lock-free atomics only: the handler must be async-signal-safe.
std::atomic<bool> g_interrupt{false};
std::atomic<bool> g_exit_on_second{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnSigint(int) {
  if (g_exit_on_second.load() && g_interrupt.load()) _exit(130);
  g_interrupt.store(true);
}
}  // namespace

std::atomic<bool>& InterruptFlag() { return g_interrupt; }
std::atomic<bool>& InterruptExitsOnSecond() { return g_exit_on_second; }

SigintScope::SigintScope() {
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // poll() is interrupted anyway (never restarted)
  sigaction(SIGINT, &sa, &old_);
}

SigintScope::~SigintScope() { sigaction(SIGINT, &old_, nullptr); }

BlockSigint::BlockSigint() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s, &old_);
}

BlockSigint::~BlockSigint() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

}  // namespace rg::cli
