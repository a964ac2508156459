#include "generate/state_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/error.h"

namespace rg {

namespace {
constexpr size_t kMaxQueuedPuts = 32;  // per store; beyond, the oldest queued insert is dropped
}

void PrefixHashes(std::span<const int32_t> tokens, size_t n, std::vector<uint64_t>* out) {
  out->resize(n + 1);
  uint64_t h = 0x9e3779b97f4a7c15ull;
  (*out)[0] = h;
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ (uint64_t(uint32_t(tokens[i])) + 0x632be59bd9b4e019ull)) * 0x100000001b3ull;
    h ^= h >> 29;
    (*out)[i + 1] = h;
  }
}

std::string StoreKey(const ModelFingerprint& fp, std::span<const int32_t> tokens) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  const uint64_t head[3] = {0x7267732d6b657931ull /* "rgs-key1" */, fp.config, fp.weights};
  XXH3_128bits_update(st, head, sizeof head);
  XXH3_128bits_update(st, tokens.data(), tokens.size() * sizeof(int32_t));
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
  return std::string("rgs:") + buf;
}

// One slower tier and its two threads: lookups and inserts each have their
// own, so a slow insert (a large value to a remote store) never delays a
// waiting request's lookup.
// Calls fn once `left` stores have answered.
struct StoredSignal {
  std::atomic<int> left;
  std::function<void()> fn;
  void One() {
    if (left.fetch_sub(1) == 1 && fn) fn();
  }
};

struct StateCache::StoreTier {
  struct Put {
    std::string key;
    SnapshotPtr snap;
    std::shared_ptr<StoredSignal> signal;  // may be null
  };
  struct Fetch {
    std::vector<int32_t> tokens;
    std::vector<int64_t> lengths;
    int64_t min_len, limit;
    std::function<void(SnapshotPtr)> done;
  };

  StateCache* cache;
  StoreTier* next = nullptr;  // asked when this tier misses
  std::unique_ptr<SnapshotStore> store;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Fetch> fetches;
  std::deque<Put> puts;
  bool stop = false;
  std::thread fetcher, putter;

  void FetchLoop() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return stop || !fetches.empty(); });
      if (stop) return;  // what is left is answered by the destructor
      Fetch f = std::move(fetches.front());
      fetches.pop_front();
      lk.unlock();
      RunFetch(std::move(f));
      lk.lock();
    }
  }

  void PutLoop() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return stop || !puts.empty(); });
      if (puts.empty()) return;  // stopping: queued inserts are written first
      Put p = std::move(puts.front());
      puts.pop_front();
      lk.unlock();
      store->Put(p.key, p.snap->Serialize(cache->config_, cache->fp_), p.snap->tokens());
      if (p.signal) p.signal->One();
      lk.lock();
    }
  }

  void RunFetch(Fetch f) {
    std::vector<int64_t> lens = f.lengths;
    for (int64_t n : store->KnownLengths(f.tokens)) lens.push_back(n);
    std::erase_if(lens, [&](int64_t n) { return n <= f.min_len || n > f.limit || n > int64_t(f.tokens.size()); });
    std::sort(lens.begin(), lens.end(), std::greater<>());
    lens.erase(std::unique(lens.begin(), lens.end()), lens.end());
    SnapshotPtr found;
    if (!lens.empty() && store->Up()) {
      std::vector<std::string> keys;
      for (int64_t n : lens) keys.push_back(StoreKey(cache->fp_, std::span(f.tokens.data(), size_t(n))));
      const std::vector<bool> have = store->Contains(keys);
      for (size_t i = 0; i < keys.size() && !found; ++i) {
        if (i >= have.size() || !have[i]) continue;
        const std::optional<std::string> bytes = store->Get(keys[i]);
        if (!bytes) continue;
        found = Check(*bytes, keys[i], std::span(f.tokens.data(), size_t(lens[i])), lens[i] == f.limit);
      }
    }
    {
      std::lock_guard<std::mutex> g(cache->mu_);
      ++cache->stats_.store_fetches;
      if (found) ++cache->stats_.store_hits;
    }
    if (found) {
      cache->Insert(found, /*memory_only=*/true);
      f.done(found);
    } else if (next) {
      next->Enqueue(std::move(f));
    } else {
      f.done(nullptr);
    }
  }

  // A store's value is used only if it is a valid snapshot of exactly these
  // tokens of this model.
  SnapshotPtr Check(const std::string& bytes, const std::string& key, std::span<const int32_t> want, bool need_logits) {
    const std::string name = store->Where(key);
    try {
      SnapshotPtr s = Snapshot::Parse(bytes, name, cache->config_, cache->fp_);
      RG_CHECK(std::equal(s->tokens().begin(), s->tokens().end(), want.begin(), want.end()), name,
               ": holds the snapshot of other tokens (hash collision or a foreign writer)");
      if (need_logits && !s->logits()) return nullptr;
      return s;
    } catch (const std::exception& e) {
      {
        std::lock_guard<std::mutex> g(cache->mu_);
        ++cache->stats_.store_rejected;
      }
      cache->Log(std::string("skipped: ") + e.what());
      store->Reject(key);
      return nullptr;
    }
  }

  void Enqueue(Fetch f) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (!stop) {
        fetches.push_back(std::move(f));
        cv.notify_all();
        return;
      }
    }
    f.done(nullptr);  // shutting down: a miss
  }

  void EnqueuePut(Put p) {
    bool dropped = false;
    std::shared_ptr<StoredSignal> given_up;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (puts.size() >= kMaxQueuedPuts) {
        given_up = std::move(puts.front().signal);
        puts.pop_front();
        dropped = true;
      }
      puts.push_back(std::move(p));
    }
    cv.notify_all();
    if (given_up) given_up->One();
    std::lock_guard<std::mutex> g(cache->mu_);
    ++cache->stats_.store_puts;
    if (dropped) ++cache->stats_.store_dropped;
  }
};

StateCache::StateCache(const Config& c, const ModelFingerprint& fp, size_t budget_bytes)
    : config_(c), fp_(fp), budget_(budget_bytes) {
  stats_.budget_bytes = budget_bytes;
}

StateCache::~StateCache() {
  for (auto& t : stores_) {
    {
      std::lock_guard<std::mutex> lk(t->mu);
      t->stop = true;
    }
    t->cv.notify_all();
  }
  for (auto& t : stores_) {
    if (t->fetcher.joinable()) t->fetcher.join();
    if (t->putter.joinable()) t->putter.join();
  }
  // Lookups still waiting are answered (a miss) so nobody waits forever.
  for (auto& t : stores_)
    for (auto& f : t->fetches) f.done(nullptr);
}

void StateCache::AddStore(std::unique_ptr<SnapshotStore> store) {
  auto t = std::make_unique<StoreTier>();
  t->cache = this;
  t->store = std::move(store);
  if (!stores_.empty()) stores_.back()->next = t.get();
  StoreTier* raw = t.get();
  stores_.push_back(std::move(t));
  raw->fetcher = std::thread([raw] { raw->FetchLoop(); });
  raw->putter = std::thread([raw] { raw->PutLoop(); });
}

void StateCache::Log(const std::string& line) const { std::fprintf(stderr, "[cache] %s\n", line.c_str()); }

SnapshotPtr StateCache::Lookup(std::span<const int32_t> tokens, int64_t limit) {
  limit = std::min<int64_t>(limit, int64_t(tokens.size()));
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.lookups;
  if (limit < 0 || lengths_.empty() || lengths_.begin()->first > limit) return nullptr;
  std::vector<uint64_t> h;
  PrefixHashes(tokens, size_t(limit), &h);
  for (auto it = lengths_.upper_bound(limit); it != lengths_.begin();) {
    --it;
    const int64_t n = it->first;
    auto [b, e] = index_.equal_range(h[size_t(n)]);
    for (; b != e; ++b) {
      const Snapshot& s = *b->second->snap;
      if (s.pos() != n || (n == limit && !s.logits())) continue;
      if (!std::equal(s.tokens().begin(), s.tokens().end(), tokens.begin())) continue;
      lru_.splice(lru_.begin(), lru_, b->second);  // most recently used
      ++stats_.hits;
      stats_.hit_tokens += uint64_t(n);
      return b->second->snap;
    }
  }
  return nullptr;
}

void StateCache::Insert(SnapshotPtr s, bool memory_only, std::function<void()> stored) {
  if (!s) return;
  if (memory_only || stores_.empty()) {
    if (stored) stored();
  } else {
    std::shared_ptr<StoredSignal> signal;
    if (stored) {
      signal = std::make_shared<StoredSignal>();
      signal->left = int(stores_.size());
      signal->fn = std::move(stored);
    }
    for (auto& t : stores_) t->EnqueuePut({StoreKey(fp_, s->tokens()), s, signal});
  }
  if (s->bytes() > budget_) return;  // would evict everything and still not fit
  std::vector<uint64_t> h;
  PrefixHashes(s->tokens(), s->tokens().size(), &h);
  const uint64_t key = h.back();
  std::lock_guard<std::mutex> lk(mu_);
  auto [b, e] = index_.equal_range(key);
  for (; b != e; ++b) {
    const Snapshot& old = *b->second->snap;
    if (old.tokens() != s->tokens()) continue;
    if (old.logits() || !s->logits()) {  // keep the one we have
      lru_.splice(lru_.begin(), lru_, b->second);
      return;
    }
    bytes_ -= old.bytes();
    bytes_ += s->bytes();
    b->second->snap = std::move(s);
    lru_.splice(lru_.begin(), lru_, b->second);
    EvictLocked();
    return;
  }
  lru_.push_front({s, key});
  index_.emplace(key, lru_.begin());
  ++lengths_[s->pos()];
  bytes_ += s->bytes();
  ++stats_.inserts;
  EvictLocked();
}

void StateCache::EvictLocked() {
  while (bytes_ > budget_ && !lru_.empty()) {
    auto victim = std::prev(lru_.end());
    auto [b, e] = index_.equal_range(victim->hash);
    for (; b != e; ++b)
      if (b->second == victim) {
        index_.erase(b);
        break;
      }
    const int64_t n = victim->snap->pos();
    if (--lengths_[n] == 0) lengths_.erase(n);
    bytes_ -= victim->snap->bytes();
    lru_.erase(victim);
    ++stats_.evictions;
  }
}

void StateCache::FetchAsync(std::vector<int32_t> tokens, std::vector<int64_t> lengths, int64_t min_len, int64_t limit,
                            std::function<void(SnapshotPtr)> done) {
  if (stores_.empty()) {
    done(nullptr);
    return;
  }
  stores_.front()->Enqueue({std::move(tokens), std::move(lengths), min_len, limit, std::move(done)});
}

StateCacheStats StateCache::Stats() const {
  StateCacheStats s;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s = stats_;
    s.entries = lru_.size();
    s.bytes = bytes_;
  }
  for (const auto& t : stores_) s.stores.push_back({t->store->Name(), t->store->Status()});
  return s;
}

}  // namespace rg
