// Safetensors checkpoints: a single file or a set of shards listed in
// model.safetensors.index.json. Files are mmapped read-only; tensors are
// zero-copy views into the mapping. Every byte of an untrusted file is checked:
// header length, JSON, dtypes, shapes vs byte sizes, offsets inside the data
// section and not overlapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace rg {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mmapped file
  size_t nbytes = 0;
  size_t offset = 0;  // of data from the start of the file
  std::string file;  // path of the file holding it, for error messages

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// "[2560, 256]" for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

// Parses a complete safetensors byte buffer (8-byte little-endian header length,
// JSON header, data section). `path` only names the file in error messages.
// Throws rg::Error on any inconsistency. Entry point of the fuzzer.
struct ParsedSafetensors {
  std::vector<TensorView> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
};
ParsedSafetensors ParseSafetensors(const uint8_t* bytes, size_t size, const std::string& path);

// One mmapped .safetensors file.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return parsed_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return parsed_.metadata; }
  const TensorView* Find(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  ParsedSafetensors parsed_;
};

// All tensors of a model directory. Uses model.safetensors.index.json when
// present (every listed shard must exist, every tensor must be in the shard
// the index names); otherwise model.safetensors, otherwise the only
// *.safetensors file. Names must be unique across shards.
class Checkpoint {
 public:
  static std::unique_ptr<Checkpoint> Open(const std::string& dir);

  const TensorView* Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

  // Hint the kernel to back the mapped weights with transparent huge pages
  // and to read them ahead (best effort).
  void AdviseHugePages() const;

  // Drops this process's mapping of the whole pages inside a tensor (after its
  // bytes were copied elsewhere) so they no longer count in its RSS; a later
  // access reads them again from the page cache.
  static void ReleasePages(const TensorView& t);

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

// Writing (rgemma init / quantize, tests). Tensors are written in the given
// order; data must hold exactly numel * DTypeSize(dtype) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};
// A checkpoint in shards: tensors of these sizes, kept in order, grouped into
// shards of at most `limit` bytes (a larger tensor gets a shard of its own).
// Returns each shard's tensor indices; one empty shard for no tensors.
std::vector<std::vector<size_t>> GroupIntoShards(const std::vector<size_t>& bytes, size_t limit);

void WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace rg
