#include "generate/disk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace rg {

namespace {

constexpr const char* kSuffix = ".rgstate";

void Log(const std::string& line) { std::fprintf(stderr, "[cache] %s\n", line.c_str()); }

// "rgs:<hex>" <-> "rgs-<hex>.rgstate" (no ':' in file names).
std::string FileNameOf(const std::string& key) {
  std::string n = key;
  std::replace(n.begin(), n.end(), ':', '-');
  return n + kSuffix;
}
bool KeyOfFileName(const std::string& name, std::string* key) {
  const size_t sl = std::strlen(kSuffix);
  if (name.size() <= sl || name.compare(name.size() - sl, sl, kSuffix) != 0 || name.rfind("rgs-", 0) != 0) return false;
  *key = "rgs:" + name.substr(4, name.size() - sl - 4);
  return true;
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

}  // namespace

DiskStore::DiskStore(std::string dir, size_t budget_bytes, const Config& c, const ModelFingerprint& fp)
    : dir_(std::move(dir)), budget_(budget_bytes), config_(c), fp_(fp) {
  CreateDirectories(dir_);
  DIR* d = ::opendir(dir_.c_str());
  RG_CHECK(d, dir_, ": cannot read the cache directory: ", std::strerror(errno));
  std::vector<std::pair<std::string, struct stat>> found;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(".rgs-", 0) == 0) {  // a write that never finished
      ::unlinkat(::dirfd(d), name.c_str(), 0);
      continue;
    }
    std::string key;
    if (!KeyOfFileName(name, &key)) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    found.push_back({key, st});
  }
  ::closedir(d);
  // Oldest first, so the recency order follows the files' modification times.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.second.st_mtim.tv_sec != b.second.st_mtim.tv_sec ? a.second.st_mtim.tv_sec < b.second.st_mtim.tv_sec
                                                              : a.second.st_mtim.tv_nsec < b.second.st_mtim.tv_nsec;
  });
  for (const auto& [key, st] : found) {
    const std::string path = PathOf(key);
    // The header says whose snapshot this is; the body is checked when read.
    char head[64];
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    const bool read_ok = fd >= 0 && ::pread(fd, head, sizeof head, 0) == ssize_t(sizeof head);
    if (fd >= 0) ::close(fd);
    const bool ours = read_ok && std::memcmp(head, "RGSTATE", 8) == 0 && GetU64(head + 24) == fp_.config &&
                      GetU64(head + 32) == fp_.weights && GetU64(head + 16) == uint64_t(st.st_size);
    if (!ours) {
      ++skipped_;
      Log(StrCat("skipped ", path, ": not a state file of this model (",
                 read_ok ? "another model, or corrupt" : "shorter than a header", ")"));
      continue;
    }
    File f;
    f.bytes = size_t(st.st_size);
    f.pos = int64_t(GetU64(head + 40));
    f.used = ++clock_;
    files_[key] = f;
    lengths_.insert(f.pos);
    bytes_ += f.bytes;
  }
  std::lock_guard<std::mutex> lk(mu_);
  EvictLocked();
}

std::string DiskStore::PathOf(const std::string& key) const { return dir_ + "/" + FileNameOf(key); }

std::vector<bool> DiskStore::Contains(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<bool> out;
  for (const std::string& k : keys) out.push_back(files_.count(k) > 0);
  return out;
}

std::optional<std::string> DiskStore::Get(const std::string& key) {
  const std::string path = PathOf(key);
  try {
    std::string bytes = ReadStateFileBytes(path, config_, fp_);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = files_.find(key);
    if (it != files_.end()) it->second.used = ++clock_;
    ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // recency survives a restart
    return bytes;
  } catch (const std::exception& e) {
    Log(StrCat("skipped: ", e.what()));
    std::lock_guard<std::mutex> lk(mu_);
    ++skipped_;
    Forget(key);  // not offered again
    return std::nullopt;
  }
}

void DiskStore::Put(const std::string& key, const std::string& value, std::span<const int32_t>) {
  if (value.size() > budget_) return;
  try {
    WriteFileAtomic(PathOf(key), value);
  } catch (const std::exception& e) {
    Log(StrCat("not written: ", e.what()));
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  Forget(key);
  File f;
  f.bytes = value.size();
  f.pos = int64_t(GetU64(value.data() + 40));
  f.used = ++clock_;
  files_[key] = f;
  lengths_.insert(f.pos);
  bytes_ += f.bytes;
  EvictLocked();
}

void DiskStore::Reject(const std::string& key) {
  std::lock_guard<std::mutex> lk(mu_);
  ++skipped_;
  Forget(key);
}

void DiskStore::Forget(const std::string& key) {
  auto it = files_.find(key);
  if (it == files_.end()) return;
  bytes_ -= it->second.bytes;
  lengths_.erase(lengths_.find(it->second.pos));
  files_.erase(it);
}

void DiskStore::EvictLocked() {
  while (bytes_ > budget_ && !files_.empty()) {
    auto victim = std::min_element(files_.begin(), files_.end(),
                                   [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
    ::unlink(PathOf(victim->first).c_str());
    Forget(victim->first);
  }
}

std::vector<int64_t> DiskStore::KnownLengths(std::span<const int32_t>) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<int64_t> out(lengths_.begin(), lengths_.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string DiskStore::Status() const {
  std::lock_guard<std::mutex> lk(mu_);
  return StrCat("ok: ", files_.size(), " snapshots, ", bytes_ >> 20, " of ", budget_ >> 20, " MiB",
                skipped_ ? StrCat(", ", skipped_, " skipped") : std::string());
}

}  // namespace rg
