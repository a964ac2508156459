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
// naming the path and the errno text. A symlink is followed (the file it
// names is replaced, the link stays); an existing target that is not a
// regular file (/dev/stdout, /dev/full, a FIFO) is written in place, every
// write still checked, since renaming over it would replace the device.
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
  std::string path_;  // as given (for messages)
  std::string dest_;  // what is replaced: path_ with symlinks resolved
  std::string tmp_;   // empty: writing dest_ in place
  int fd_ = -1;
};

// AtomicFile in one call.
void WriteFileAtomic(const std::string& path, std::string_view bytes);

// A directory written as a whole (a model from `init` or `quantize`):
//   AtomicDirectory d(out, force);  write files under d.path() ...;  d.Commit();
// The files go into a hidden temporary directory beside `dir`; Commit()
// renames it into place, so `dir` holds either what it held before or the
// complete new contents, never a mix (a kill -9 half-way leaves `dir` as it
// was, plus the hidden ".NAME.XXXXXX" directory). An existing `dir` that is
// not an empty directory is refused (rg::Error naming `flag`) unless
// `replace`; then Commit() swaps it out and removes the old contents.
// Destroyed without Commit(), the temporary directory is removed.
class AtomicDirectory {
 public:
  AtomicDirectory(const std::string& dir, bool replace, const std::string& flag);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& path() const { return tmp_; }  // write here
  void Commit();

 private:
  std::string dir_, tmp_;
};

// True if `path` is `dir` or lies somewhere below it (compared by identity,
// as SameFile, so spellings and symlinks do not matter).
bool IsSameOrInside(const std::string& path, const std::string& dir);

// Opens `path` for reading, following symlinks, and checks that it is a
// regular file: a FIFO (which would block), a device such as /dev/zero
// (which never ends), a socket or a directory is refused with rg::Error
// naming the path and `what` ("config", "tokenizer", ...). Never blocks.
// Returns the descriptor (O_CLOEXEC, blocking); the caller closes it.
int OpenRegularFile(const std::string& path, const std::string& what);

// The contents of a regular file (OpenRegularFile), refusing more than
// max_bytes.
std::string ReadRegularFile(const std::string& path, size_t max_bytes, const std::string& what);

}  // namespace rg
