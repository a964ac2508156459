// A slower tier beside the state cache's memory (generate/state_cache.h):
// snapshots kept on disk (generate/disk_store.h) or in a shared store such
// as Redis, so they outlive the process or are shared by replicas. Values
// are state files (model/state_io.h) carrying their tokens; keys come from
// StoreKey. The cache calls a store from two threads of its own: one makes
// the lookups (Contains, Get, KnownLengths, Reject), the other the inserts
// (Put); Status may be called from anywhere. An implementation keeps what
// they share safe (a mutex, a connection per thread).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/state_io.h"

namespace rg {

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // For logs and /health: "disk:/var/cache/rgemma", "redis://host:6379/0".
  virtual std::string Name() const = 0;
  // Which of `keys` the store has (true = probably: Get may still miss).
  // Any failure is "no".
  virtual std::vector<bool> Contains(const std::vector<std::string>& keys) = 0;
  // The value, or nullopt on a miss or any failure (never throws).
  virtual std::optional<std::string> Get(const std::string& key) = 0;
  // Stores the value of the snapshot of `tokens` (failures are counted and
  // logged, never thrown).
  virtual void Put(const std::string& key, const std::string& value, std::span<const int32_t> tokens) = 0;
  // Prefix lengths of snapshots the store holds that may be prefixes of
  // `tokens` (a disk index, a shared list per conversation start); probed
  // besides the cache's own candidates.
  virtual std::vector<int64_t> KnownLengths(std::span<const int32_t> tokens) { return {}; }
  // Where a key's value lives, for log lines (a file's path).
  virtual std::string Where(const std::string& key) const { return Name() + " " + key; }
  // The value of `key` was not a valid snapshot of what it should hold: do
  // not offer it again.
  virtual void Reject(const std::string& key) {}
  // A one-line status for /health ("ok", "down since ...", sizes).
  virtual std::string Status() const = 0;
  // True while the store answers (false: every call is a miss).
  virtual bool Up() const { return true; }
};

// The key of the snapshot of `tokens` (from position 0) of the model `fp`:
// "rgs:" + 32 hex digits of XXH3-128 over (fingerprint, tokens).
std::string StoreKey(const ModelFingerprint& fp, std::span<const int32_t> tokens);

}  // namespace rg
