#include "io/file_range_map.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace rg {
namespace {

size_t PageSize() {
  const long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? size_t(p) : 4096;
}

}  // namespace

FileRangeMap::FileRangeMap(const std::string& path, size_t offset, size_t bytes) {
  RG_CHECK(bytes > 0, path, ": empty range to map");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, ": cannot open: ", std::strerror(errno));
  // The file offset of a mapping must be page aligned; a 2 MiB aligned one
  // lets the kernel place it 2 MiB aligned too, which huge entries need.
  const size_t align = size_t(2) << 20;
  const size_t start = offset / align * align;
  skip_ = offset - start;
  bytes_ = bytes;
  map_bytes_ = skip_ + bytes;
  void* m = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, off_t(start));
  const int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) Fail(path, ": mmap of ", map_bytes_, " bytes at offset ", start, " failed: ", std::strerror(err));
  base_ = m;
#ifdef MADV_HUGEPAGE
  (void)::madvise(base_, map_bytes_, MADV_HUGEPAGE);
#endif
}

FileRangeMap::FileRangeMap(FileRangeMap&& o) noexcept
    : base_(o.base_), map_bytes_(o.map_bytes_), skip_(o.skip_), bytes_(o.bytes_) {
  o.base_ = nullptr;
  o.map_bytes_ = 0;
}

FileRangeMap::~FileRangeMap() {
  if (base_) ::munmap(base_, map_bytes_);
}

void FileRangeMap::Populate(size_t begin, size_t end) const {
  const size_t page = PageSize();
  const uintptr_t b0 = reinterpret_cast<uintptr_t>(data()) + begin;
  const uintptr_t lo = b0 & ~uintptr_t(page - 1);
  const uintptr_t hi = reinterpret_cast<uintptr_t>(data()) + end;
  if (hi <= lo) return;
  if (::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_READ) == 0) return;
  // Older kernels: touch one byte per page.
  volatile const char* p = reinterpret_cast<const char*>(lo);
  for (uintptr_t a = lo; a < hi; a += page) (void)p[a - lo];
}

void FileRangeMap::Release(size_t begin, size_t end) const {
  const size_t page = PageSize();
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(data()) + begin + page - 1) & ~uintptr_t(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(data()) + end) & ~uintptr_t(page - 1);
  if (hi > lo) (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

std::vector<double> HugeMappedFractions(const std::vector<const FileRangeMap*>& maps) {
  std::vector<double> out(maps.size(), 0.0);
  std::map<uintptr_t, size_t> by_start;  // mapping start -> index
  for (size_t i = 0; i < maps.size(); ++i) by_start[reinterpret_cast<uintptr_t>(maps[i]->mapping_start())] = i;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  long current = -1;  // index of the entry being read, -1: not one of ours
  double rss = 0, pmd = 0;
  auto finish = [&] {
    if (current >= 0 && rss > 0) out[size_t(current)] = pmd / rss;
    current = -1;
    rss = pmd = 0;
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const size_t dash = line.find('-');
    // An entry's header is "start-end perms offset dev inode path"; its
    // fields are "Name:   value kB".
    if (dash != std::string::npos && line.find(' ') > dash && line.find(':') > line.find(' ')) {
      finish();
      auto it = by_start.find(std::strtoull(line.substr(0, dash).c_str(), nullptr, 16));
      if (it != by_start.end()) current = long(it->second);
      continue;
    }
    if (current < 0) continue;
    if (line.rfind("Rss:", 0) == 0) rss = std::strtod(line.c_str() + 4, nullptr);
    else if (line.rfind("FilePmdMapped:", 0) == 0) pmd = std::strtod(line.c_str() + 14, nullptr);
  }
  finish();
  return out;
}

}  // namespace rg
