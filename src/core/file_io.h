// Writing files and directories safely: every output path gets its missing
// parent directories (as `mkdir -p`), and a file is written under a unique
// temporary name in its own directory, flushed to disk, then renamed over the
// target, so a reader sees either the old file or the complete new one, never
// a torn one, and an unrelated "PATH.tmp" is never touched.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rg {

// mkdir -p: creates `dir` and every missing parent. Throws rg::Error naming
// the directory that could not be created and why.
void CreateDirectories(const std::string& dir);

// CreateDirectories(dirname(path)); nothing for a bare file name.
void CreateParentDirectories(const std::string& path);

// True if both paths exist and name the same file or directory (device and
// inode: "qs", "./qs/", a symlink to qs are all the same).
bool SameFile(const std::string& a, const std::string& b);

// A file being written atomically:
//   AtomicFile f(path);  f.Write(...);  ...  f.Commit();
// The data goes to a mkstemp file beside `path` (parents created as needed);
// Commit() checks every write, fsyncs, renames it over `path` and fsyncs the
// directory. Destroyed without Commit() (an error, an exception), the
// temporary file is removed and `path` is untouched. Errors are rg::Error
// naming the path and the errno text.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, int mode = 0644);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void Write(const void* data, size_t n);
  void Write(std::string_view s) { Write(s.data(), s.size()); }
  void Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// AtomicFile in one call.
void WriteFileAtomic(const std::string& path, std::string_view bytes);

}  // namespace rg
