#include "core/file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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

// fsync of a directory: makes a rename or a new entry in it durable.
void SyncDirectory(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

bool IsEmptyDirectory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  bool empty = true;
  while (const dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  ::closedir(d);
  return empty;
}

// `path` with every symlink resolved when it exists; else `path` itself.
std::string Resolved(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return path;
  std::string out = real;
  std::free(real);
  return out;
}

const char* FileKind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
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
  dest_ = Resolved(path_);
  struct stat st {};
  if (::stat(dest_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    RG_CHECK(!S_ISDIR(st.st_mode), path_, ": is a directory (expected a file name)");
    fd_ = ::open(dest_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      Fail(path_, ": cannot open for writing: ", std::strerror(err));
    }
    return;
  }
  CreateParentDirectories(dest_);
  // Hidden, unique, in the target's own directory (rename must not cross
  // file systems).
  tmp_ = DirName(dest_) + "/." + BaseName(dest_) + ".XXXXXX";
  fd_ = ::mkstemp(tmp_.data());
  if (fd_ < 0) {
    const int err = errno;
    tmp_.clear();
    Fail(path_, ": cannot create a file in ", DirName(dest_), ": ", std::strerror(err));
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
  const bool in_place = tmp_.empty();
  if (!in_place && ::fsync(fd_) != 0) {
    const int err = errno;
    Fail(path_, ": write failed (fsync): ", std::strerror(err));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    Fail(path_, ": write failed (close): ", std::strerror(err));
  }
  if (in_place) return;
  if (::rename(tmp_.c_str(), dest_.c_str()) != 0) {
    const int err = errno;
    Fail(path_, ": cannot replace it with the new file: ", std::strerror(err));
  }
  tmp_.clear();
  SyncDirectory(DirName(dest_));  // the rename itself must reach the disk too
}

void WriteFileAtomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.Write(bytes);
  f.Commit();
}

AtomicDirectory::AtomicDirectory(const std::string& dir, bool replace, const std::string& flag) {
  RG_CHECK(!dir.empty(), flag, ": the directory name is empty");
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    RG_CHECK(S_ISDIR(st.st_mode), flag, " ", dir, ": exists and is not a directory");
    RG_CHECK(replace || IsEmptyDirectory(dir), flag, " ", dir,
             ": the directory is not empty (writing into it would mix two models); give a new or empty "
             "directory, or --force to replace its contents");
    dir_ = Resolved(dir);  // a symlink: the directory it names is replaced
  } else {
    const int err = errno;
    // ENOTDIR: a parent is a file; CreateParentDirectories names it.
    RG_CHECK(err == ENOENT || err == ENOTDIR, flag, " ", dir, ": ", std::strerror(err));
    dir_ = dir;
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    CreateParentDirectories(dir_);
  }
  RG_CHECK(dir_ != "/", flag, ": refusing to replace /");
  tmp_ = DirName(dir_) + "/." + BaseName(dir_) + ".XXXXXX";
  if (!::mkdtemp(tmp_.data())) {
    const int err = errno;
    tmp_.clear();
    Fail(flag, " ", dir, ": cannot create a directory in ", DirName(dir_), ": ", std::strerror(err));
  }
  ::chmod(tmp_.c_str(), 0777 & ~ProcessUmask());  // mkdtemp creates 0700
}

AtomicDirectory::~AtomicDirectory() {
  if (tmp_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

void AtomicDirectory::Commit() {
  RG_CHECK(!tmp_.empty(), dir_, ": committed twice");
  SyncDirectory(tmp_);
  if (::rename(tmp_.c_str(), dir_.c_str()) != 0) {
    const int err = errno;
    RG_CHECK(err == ENOTEMPTY || err == EEXIST, dir_, ": cannot move the new directory into place: ",
             std::strerror(err));
    // A non-empty directory (--force): swap the two in one step, so dir_
    // never goes missing, then remove the old contents.
    if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) != 0) {
      const int xerr = errno;
      Fail(dir_, ": cannot replace the directory with the new one: ", std::strerror(xerr));
    }
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);  // now the old contents
  }
  tmp_.clear();
  SyncDirectory(DirName(dir_));
}

bool IsSameOrInside(const std::string& path, const std::string& dir) {
  for (std::string p = Resolved(path);; p = DirName(p)) {
    if (SameFile(p, dir)) return true;
    if (p == "/" || p == ".") return false;
  }
}

int OpenRegularFile(const std::string& path, const std::string& what) {
  RG_CHECK(!path.empty(), what, ": the file name is empty");
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    Fail(path, ": cannot open the ", what, ": ", std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    const mode_t m = st.st_mode;
    ::close(fd);
    if (m == 0) Fail(path, ": cannot read the ", what, ": ", std::strerror(err));
    Fail(path, ": the ", what, " must be a regular file, and this is ", FileKind(m));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::string ReadRegularFile(const std::string& path, size_t max_bytes, const std::string& what) {
  const int fd = OpenRegularFile(path, what);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      Fail(path, ": cannot read the ", what, ": ", std::strerror(err));
    }
    if (n == 0) break;
    if (out.size() + size_t(n) > max_bytes) {
      ::close(fd);
      Fail(path, ": the ", what, " is larger than the limit of ", max_bytes, " bytes");
    }
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

}  // namespace rg
