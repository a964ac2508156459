// Read-only mappings of byte ranges of files, each its own mapping (so the
// kernel reports on each separately), advised to use 2 MiB pages.
//
// Whether a mapped page-cache range really gets 2 MiB page-table entries is
// up to the page cache: a file whose cache was filled in large folios (e.g.
// read through a MADV_HUGEPAGE mapping on Linux >= 6.x with ext4/xfs) maps
// with them, one read or written in small pieces stays in 4 KiB pages. The
// weights loader keeps a range zero-copy where it maps huge (streaming it
// then runs as fast as a huge-page copy) and copies it otherwise.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rg {

class FileRangeMap {
 public:
  // Maps bytes [offset, offset + bytes) of the file at path (bytes > 0).
  // Throws rg::Error naming the file.
  FileRangeMap(const std::string& path, size_t offset, size_t bytes);
  ~FileRangeMap();
  FileRangeMap(FileRangeMap&& o) noexcept;
  FileRangeMap& operator=(FileRangeMap&&) = delete;
  FileRangeMap(const FileRangeMap&) = delete;

  const void* data() const { return static_cast<const char*>(base_) + skip_; }
  size_t bytes() const { return bytes_; }
  const void* mapping_start() const { return base_; }  // page aligned, <= data()

  // Maps part [begin, end) of the range (byte offsets into it) from the page
  // cache into this process (reading the file where it is not cached), so
  // later reads take no page faults. Disjoint parts may be populated by
  // several threads at once. Best effort.
  void Populate(size_t begin, size_t end) const;
  // Unmaps the whole pages inside part [begin, end) from this process (the
  // page cache keeps them; a later read maps them again). A loader copying
  // the range releases each piece once copied, so the copy and its source
  // are never both resident in full.
  void Release(size_t begin, size_t end) const;

 private:
  void* base_ = nullptr;  // the mapping: page aligned, below data()
  size_t map_bytes_ = 0;
  size_t skip_ = 0;       // data() - base_
  size_t bytes_ = 0;
};

// For each mapping, the fraction of its resident bytes mapped with 2 MiB
// pages (FilePmdMapped / Rss of its entry in /proc/self/smaps); 0 where
// unknown (no /proc, or the kernel merged the entry with another).
std::vector<double> HugeMappedFractions(const std::vector<const FileRangeMap*>& maps);

}  // namespace rg
