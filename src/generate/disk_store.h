// The state cache's disk tier (`--cache-dir DIR`): snapshots as state files
// (model/state_io.h) named by their key, so they survive a restart. Written
// atomically (a reader never sees a torn file), read with the state file's
// own checks; a file that is truncated, corrupt or of another model is
// skipped with one log line and never loaded. The directory is kept under a
// byte budget, the least recently used files removed first.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "generate/snapshot_store.h"

namespace rg {

class DiskStore : public SnapshotStore {
 public:
  // Creates `dir` if needed and indexes the snapshots already there (only
  // files whose header belongs to this model). Throws rg::Error if the
  // directory cannot be created or read.
  DiskStore(std::string dir, size_t budget_bytes, const Config& c, const ModelFingerprint& fp);

  std::string Name() const override { return "disk:" + dir_; }
  std::vector<bool> Contains(const std::vector<std::string>& keys) override;
  std::optional<std::string> Get(const std::string& key) override;
  void Put(const std::string& key, const std::string& value, std::span<const int32_t> tokens) override;
  std::vector<int64_t> KnownLengths(std::span<const int32_t> tokens) override;
  std::string Where(const std::string& key) const override { return PathOf(key); }
  void Reject(const std::string& key) override;
  std::string Status() const override;

  std::string PathOf(const std::string& key) const;

 private:
  struct File {
    size_t bytes = 0;
    int64_t pos = 0;     // tokens of the snapshot
    uint64_t used = 0;   // recency: larger = used later
  };
  void Forget(const std::string& key);  // under mu_
  void EvictLocked();

  const std::string dir_;
  const size_t budget_;
  const Config config_;
  const ModelFingerprint fp_;
  mutable std::mutex mu_;  // Status() runs on other threads
  std::map<std::string, File> files_;  // key -> file
  std::multiset<int64_t> lengths_;
  size_t bytes_ = 0;
  uint64_t clock_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace rg
