// A shared tier of the state cache in Redis (`serve --state-store
// redis://HOST:PORT[/DB]`), so any replica resumes any conversation: a value
// is a state file (model/state_io.h) carrying the model fingerprint and the
// exact tokens it belongs to, under StoreKey(fingerprint, tokens). Values are
// checked before use (by the cache), bounded in size before they are read,
// and anything else is a miss.
//
// Finding a snapshot without knowing its length: every Put also records the
// snapshot's length in a sorted set per conversation start (the model and
// the first kRootTokens tokens), which KnownLengths reads back; the cache
// then probes those lengths (plus its own candidates).
//
// Faults never fail a request: Redis down at start or going away later is a
// miss (one log line per outage, /health shows it), with reconnection after
// a growing pause (0.25 s doubling to 8 s); Redis' own eviction (maxmemory)
// is fine. Lookups and inserts use their own connections (the cache calls
// them from two threads).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "generate/snapshot_store.h"

struct redisContext;

namespace rg {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
};
// "redis://HOST:PORT[/DB]" (HOST may be [v6]); throws rg::Error naming the
// part that is wrong.
RedisAddress ParseRedisUrl(const std::string& url);

class RedisStore : public SnapshotStore {
 public:
  // Conversation starts shorter than this share one length set.
  static constexpr size_t kRootTokens = 16;

  // ttl_seconds 0: values do not expire (Redis' maxmemory policy decides).
  RedisStore(const std::string& url, int64_t ttl_seconds, const Config& c, const ModelFingerprint& fp);
  ~RedisStore() override;

  std::string Name() const override { return name_; }
  std::vector<bool> Contains(const std::vector<std::string>& keys) override;
  std::optional<std::string> Get(const std::string& key) override;
  void Put(const std::string& key, const std::string& value, std::span<const int32_t> tokens) override;
  std::vector<int64_t> KnownLengths(std::span<const int32_t> tokens) override;
  std::string Status() const override;
  bool Up() const override;

 private:
  // One connection and its fault state; each is used by one thread.
  struct Link;
  std::string RootKey(std::span<const int32_t> tokens) const;

  const RedisAddress addr_;
  const std::string name_;
  const int64_t ttl_;
  const size_t max_value_bytes_;  // the largest state file of this model
  const ModelFingerprint fp_;
  std::unique_ptr<Link> reader_, writer_;
};

}  // namespace rg
