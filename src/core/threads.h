// A fixed pool of worker threads that splits an index range [0, n) into
// contiguous pieces. Created once; ParallelFor does not allocate.
//
// Hand-offs are the cost that matters: a decode step of the 2B model runs
// ~200 ParallelFor calls of 0.1-1 ms each. Workers therefore spin on an atomic
// generation counter for a short while (kSpin) before they sleep on it
// (futex via std::atomic::wait), and the caller spins for the finish the same
// way; a wake-up system call is made only for a thread that really sleeps.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace rg {

class ThreadPool {
 public:
  // n_threads includes the calling thread; 1 means everything runs inline.
  // rg::Error (never an abort) when the threads cannot be created.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint pieces covering [0, n).
  // Pieces are multiples of `grain` (except the last). Blocks until all finish.
  // Calls from different threads are serialized; not reentrant (fn must not
  // call ParallelFor on the same pool).
  template <class Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t chunks = (n + grain - 1) / grain;
    const int workers = int(chunks < n_threads_ ? chunks : n_threads_);
    if (workers <= 1) {
      fn(int64_t(0), n, 0);
      return;
    }
    auto body = [&](int w) {
      const int64_t c0 = chunks * w / workers, c1 = chunks * (w + 1) / workers;
      const int64_t b = c0 * grain, e = c1 * grain < n ? c1 * grain : n;
      if (b < e) fn(b, e, w);
    };
    Run(workers, &body, [](void* ctx, int w) { (*static_cast<decltype(body)*>(ctx))(w); });
  }

 private:
  using Trampoline = void (*)(void*, int);
  void Run(int workers, void* ctx, Trampoline call);
  void WorkerLoop(int index);
  void StopWorkers();

  int n_threads_;
  std::mutex run_mu_;  // one Run at a time
  std::vector<std::thread> threads_;
  // Written by the caller before it publishes a new generation.
  void* ctx_ = nullptr;
  Trampoline call_ = nullptr;
  int active_workers_ = 0;
  bool stop_ = false;
  std::atomic<uint32_t> generation_{0};  // bumped once per Run (and at stop)
  std::atomic<int> sleepers_{0};         // workers blocked in generation_.wait
  std::atomic<int> pending_{0};          // workers yet to finish this generation
  std::atomic<bool> caller_sleeps_{false};
};

}  // namespace rg
