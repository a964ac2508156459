#include "core/threads.h"

#include <chrono>
#include <system_error>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RG_CPU_RELAX() _mm_pause()
#else
#define RG_CPU_RELAX() std::this_thread::yield()
#endif

namespace rg {
namespace {

// Spin this long for the next hand-off before sleeping: longer than the gaps
// between the ops of a decode step (~10-100 us), short enough that an idle
// pool (server waiting for requests) costs nothing measurable.
constexpr auto kSpin = std::chrono::microseconds(200);

// Spins until done() or kSpin has passed; true if done() became true. After
// the first rounds it yields the core between checks, so that with more
// threads than cores (tests in parallel, --threads above the core count) the
// thread being waited for gets to run.
template <class Done>
bool SpinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int round = 0;; ++round) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      RG_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
    if (round >= 16) std::this_thread::yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  try {
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
  } catch (const std::system_error& e) {
    // Under a process/thread limit (ulimit -u) creation fails part-way: the
    // workers already running must be joined before the error leaves, or
    // their std::thread objects would abort the process.
    const size_t started = threads_.size() + 1;
    StopWorkers();
    Fail("cannot start ", n_threads_, " compute threads (", started, " could be): ", e.what(),
         "; use fewer (--threads) or raise the limit on processes (ulimit -u)");
  }
}

ThreadPool::~ThreadPool() { StopWorkers(); }

void ThreadPool::StopWorkers() {
  stop_ = true;
  generation_.fetch_add(1);  // seq_cst: pairs with the workers' sleepers_ count
  generation_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ThreadPool::Run(int workers, void* ctx, Trampoline call) {
  // Callers on different threads (two engines sharing a pool) take turns.
  std::lock_guard<std::mutex> turn(run_mu_);
  ctx_ = ctx;
  call_ = call;
  active_workers_ = workers;
  // Every worker acknowledges every generation, those without a piece too, so
  // no worker can still be reading ctx_/call_ when the next Run rewrites them.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst store then seq_cst load of sleepers_: either a worker about to
  // sleep sees the new generation, or we see it counted and wake it.
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) generation_.notify_all();

  call(ctx, 0);  // the caller is worker 0

  if (!SpinUntil([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
    caller_sleeps_.store(true);
    for (int left = pending_.load(); left != 0; left = pending_.load()) pending_.wait(left);
    caller_sleeps_.store(false);
  }
}

void ThreadPool::WorkerLoop(int index) {
  uint32_t seen = 0;
  for (;;) {
    if (!SpinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      sleepers_.fetch_add(1);
      generation_.wait(seen);
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    if (index < active_workers_) call_(ctx_, index);
    // seq_cst decrement then seq_cst load of caller_sleeps_ (as above).
    if (pending_.fetch_sub(1) == 1 && caller_sleeps_.load()) pending_.notify_one();
  }
}

}  // namespace rg
