#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace rg {
namespace {

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsDirectory(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The umask, read without changing it (umask(2) can only set it, and setting
// it is racy in a threaded process): Linux reports it in /proc/self/status.
mode_t ProcessUmask() {
  static const mode_t mask = [] {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return mode_t(022);
    char line[256];
    mode_t m = 022;
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "Umask:", 6) == 0) m = mode_t(std::strtol(line + 6, nullptr, 8));
    std::fclose(f);
    return m;
  }();
  return mask;
}

// mkdir -p `dir`; errors start with `subject` (the path the caller writes).
void MakeDirs(const std::string& dir, const std::string& subject) {
  RG_CHECK(!dir.empty(), "cannot create a directory with an empty name");
  if (IsDirectory(dir)) return;
  // Each prefix ending before a '/', then the whole path.
  std::vector<std::string> prefixes;
  for (size_t i = 1; i < dir.size(); ++i)
    if (dir[i] == '/' && dir[i - 1] != '/') prefixes.push_back(dir.substr(0, i));
  prefixes.push_back(dir);
  for (const std::string& p : prefixes) {
    if (::mkdir(p.c_str(), 0755) == 0 || errno == EEXIST) {
      if (IsDirectory(p)) continue;
      Fail(subject, ": cannot create directory ", p, ": it exists and is not a directory");
    }
    const int err = errno;
    Fail(subject, ": cannot create directory ", p, ": ", std::strerror(err));
  }
}

}  // namespace

void CreateDirectories(const std::string& dir) { MakeDirs(dir, dir); }

void CreateParentDirectories(const std::string& path) {
  if (path.find('/') == std::string::npos) return;
  MakeDirs(DirName(path), path);
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

AtomicFile::AtomicFile(std::string path, int mode) : path_(std::move(path)) {
  RG_CHECK(!path_.empty() && path_.back() != '/', "'", path_, "': not a file name");
  CreateParentDirectories(path_);
  // Hidden, unique, in the target's own directory (rename must not cross
  // file systems).
  tmp_ = DirName(path_) + "/." + BaseName(path_) + ".XXXXXX";
  fd_ = ::mkstemp(tmp_.data());
  if (fd_ < 0) {
    const int err = errno;
    Fail(path_, ": cannot create a file in ", DirName(path_), ": ", std::strerror(err));
  }
  // mkstemp creates 0600; give the file the mode open(2) would have.
  ::fchmod(fd_, mode_t(mode) & ~ProcessUmask());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::Write(const void* data, size_t n) {
  RG_CHECK(fd_ >= 0, path_, ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::write(fd_, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      const int err = k < 0 ? errno : ENOSPC;
      Fail(path_, ": write failed: ", std::strerror(err));
    }
    p += k;
    n -= size_t(k);
  }
}

void AtomicFile::Commit() {
  RG_CHECK(fd_ >= 0, path_, ": committed twice");
  if (::fsync(fd_) != 0) {
    const int err = errno;
    Fail(path_, ": write failed (fsync): ", std::strerror(err));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    Fail(path_, ": write failed (close): ", std::strerror(err));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    Fail(path_, ": cannot replace it with the new file: ", std::strerror(err));
  }
  tmp_.clear();
  // The rename itself must reach the disk too.
  const int dfd = ::open(DirName(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void WriteFileAtomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.Write(bytes);
  f.Commit();
}

}  // namespace rg
