// ThreadPool: every index exactly once, pieces on grain boundaries, with
// fewer pieces than threads, back-to-back calls (spinning hand-off) and calls
// after the workers have gone to sleep (futex hand-off).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/threads.h"

namespace rg {
namespace {

void ExpectEachIndexOnce(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(size_t(n + 1));
  std::atomic<int> bad_piece{0}, bad_thread{0};
  pool.ParallelFor(n, grain, [&](int64_t b, int64_t e, int thread) {
    if (b % grain != 0 || (e != n && e % grain != 0) || b >= e) ++bad_piece;
    if (thread < 0 || thread >= pool.size()) ++bad_thread;
    for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "n=" << n << " i=" << i;
  EXPECT_EQ(hits[size_t(n)].load(), 0);
  EXPECT_EQ(bad_piece.load(), 0);
  EXPECT_EQ(bad_thread.load(), 0);
}

TEST(ThreadPool, CoversEveryIndexOnceForManySizesAndThreadCounts) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 4, 7, 64, 1000, 4099})
      for (int64_t grain : {1, 3, 64}) ExpectEachIndexOnce(pool, n, grain);
  }
}

TEST(ThreadPool, ManyBackToBackCallsWithChangingWorkerCounts) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  int64_t want = 0;
  for (int rep = 0; rep < 20000; ++rep) {
    const int64_t n = 1 + rep % 6;  // 1..6 pieces: sometimes fewer than threads
    want += n;
    pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) { total += e - b; });
  }
  EXPECT_EQ(total.load(), want);
}

TEST(ThreadPool, WakesWorkersThatWentToSleep) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 5; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: workers sleep
    ExpectEachIndexOnce(pool, 300, 1);
  }
}

TEST(ThreadPool, CallerWaitsForASlowWorker) {
  ThreadPool pool(2);
  std::atomic<int> done{0};
  pool.ParallelFor(2, 1, [&](int64_t b, int64_t, int) {
    if (b == 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the caller's spin
    ++done;
  });
  EXPECT_EQ(done.load(), 2);
}

}  // namespace
}  // namespace rg
