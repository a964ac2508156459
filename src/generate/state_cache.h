// The state cache: snapshots of sequences, content-addressed by the exact
// tokens from position 0 (the stored tokens are compared, never only a
// hash; one cache serves one model). RecurrentGemma's state is a fixed-size
// snapshot, so any request whose tokens extend a snapshot's tokens resumes
// from it exactly and prefills only the rest.
//
// Memory tier: an LRU list under a byte budget (Snapshot::bytes()). Further
// tiers (SnapshotStore: disk, Redis) are optional; each gets its own thread,
// so a slow store never stalls the engine: inserts are queued (the oldest
// queued insert is dropped when the queue is full) and store lookups are
// asynchronous (FetchAsync), answered on the store's thread.
//
// Thread-safe. Snapshots are shared (SnapshotPtr), so evicting one that a
// sequence is resuming from only drops the cache's reference.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "generate/snapshot.h"
#include "generate/snapshot_store.h"

namespace rg {

struct StateCacheStats {
  uint64_t lookups = 0, hits = 0;  // memory lookups, and those that found a snapshot
  uint64_t hit_tokens = 0;         // prompt tokens covered by memory hits
  uint64_t inserts = 0, evictions = 0;
  size_t entries = 0, bytes = 0, budget_bytes = 0;
  uint64_t store_fetches = 0, store_hits = 0;  // asynchronous store lookups, and those that found one
  uint64_t store_puts = 0, store_dropped = 0, store_rejected = 0;  // rejected: corrupt / foreign values
  std::vector<std::pair<std::string, std::string>> stores;  // name, status
};

class StateCache {
 public:
  StateCache(const Config& c, const ModelFingerprint& fp, size_t budget_bytes);
  ~StateCache();  // stops the store threads once their queued inserts are written
  StateCache(const StateCache&) = delete;
  StateCache& operator=(const StateCache&) = delete;

  // Adds a slower tier; call before the cache is used.
  void AddStore(std::unique_ptr<SnapshotStore> store);
  bool has_stores() const { return !stores_.empty(); }

  // The longest snapshot in memory whose tokens are a prefix of `tokens`,
  // of at most `limit` tokens, where one of exactly `limit` tokens must carry
  // logits (to sample or score the token after it). Null on a miss.
  SnapshotPtr Lookup(std::span<const int32_t> tokens, int64_t limit);

  // Into memory (evicting the least recently used beyond the budget) and,
  // unless memory_only, queued for every store. A snapshot of the same
  // tokens is replaced only by one that carries logits when it has none.
  // `stored`, if given, is called once every store has written it (or given
  // up: a full queue, a store that is down), on a store thread; at once
  // without stores.
  void Insert(SnapshotPtr s, bool memory_only = false, std::function<void()> stored = {});

  // Looks for a longer snapshot in the stores than memory has: probes the
  // prefix lengths `lengths` (and those the stores know), keeps those in
  // (min_len, limit], and calls done() on a store thread with the longest
  // valid one found (checked: model, tokens, logits when of `limit` tokens;
  // then also kept in memory), or null. Without stores, done(null) at once.
  void FetchAsync(std::vector<int32_t> tokens, std::vector<int64_t> lengths, int64_t min_len, int64_t limit,
                  std::function<void(SnapshotPtr)> done);

  StateCacheStats Stats() const;
  const Config& config() const { return config_; }
  const ModelFingerprint& fingerprint() const { return fp_; }

 private:
  struct Node {
    SnapshotPtr snap;
    uint64_t hash;
  };
  struct StoreTier;

  void EvictLocked();
  void Log(const std::string& line) const;

  const Config config_;
  const ModelFingerprint fp_;
  const size_t budget_;

  mutable std::mutex mu_;
  std::list<Node> lru_;  // most recently used first
  std::unordered_multimap<uint64_t, std::list<Node>::iterator> index_;  // prefix hash -> node
  std::map<int64_t, int> lengths_;  // token count -> entries of that length
  size_t bytes_ = 0;
  StateCacheStats stats_;

  std::vector<std::unique_ptr<StoreTier>> stores_;
};

// The hash the memory index uses for the prefix of `tokens` of each length
// 0 .. n: out[L] covers tokens[0, L). A rolling hash, so all prefixes cost
// one pass.
void PrefixHashes(std::span<const int32_t> tokens, size_t n, std::vector<uint64_t>* out);

}  // namespace rg
