// Safetensors reader / writer. See safetensors.h.
//
// Validation follows the reference implementation (huggingface/safetensors,
// SafeTensors::read_metadata + Metadata::validate):
//   - header length N <= 100'000'000 and 8 + N <= file size;
//   - the header is a JSON object; "__metadata__" is a string -> string object;
//     every other key is a tensor {"dtype", "shape", "data_offsets"} (unknown
//     extra fields in a tensor entry are ignored, as serde does);
//   - sorted by data_offsets, the tensors must tile the data section exactly:
//     the first starts at 0, each starts where the previous one ended (no hole,
//     no overlap), and the last one ends at the end of the file. Trailing bytes
//     after the last tensor are rejected like the reference does
//     (MetadataIncompleteBuffer): a file that the reference loader refuses is
//     not a file we want to silently accept.
// In addition we reject duplicate keys in the header (the reference keeps one
// of them silently) and shapes whose element count does not fit in int64.
// Tensor data is not required to be aligned: the kernels read unaligned.

#include "io/safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/file_io.h"

namespace rg {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // as the reference implementation
constexpr size_t kMaxIndexSize = 100'000'000;
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string Quoted(std::string_view s) { return "'" + Printable(s) + "'"; }

// Type name of a JSON value for "found ..." messages.
std::string JsonKind(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a non-integer number";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "nothing";
  }
  return "?";
}

// A short rendering of a JSON value for messages.
std::string JsonShort(const json& j) {
  std::string s;
  try {
    s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (...) {
    s = "?";
  }
  return Printable(s, 80);
}

// nlohmann messages start with "[json.exception.parse_error.101] "; drop that.
std::string JsonErrorText(const std::exception& e) {
  std::string_view w = e.what();
  if (!w.empty() && w[0] == '[') {
    size_t p = w.find("] ");
    if (p != std::string_view::npos) w.remove_prefix(p + 2);
  }
  return Printable(w, 240);
}

bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// Every partial product must fit in int64, because TensorView::numel()
// multiplies the dims left to right in int64 ([2^62, 2, 0] has 0 elements but
// overflows on the way).
bool CheckedNumelStep(uint64_t numel, uint64_t dim, uint64_t* out) {
  return CheckedMul(numel, dim, out) && *out <= uint64_t(std::numeric_limits<int64_t>::max());
}

// A non-negative JSON integer that fits in int64, or nullopt.
std::optional<int64_t> NonNegativeInt(const json& j) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(v);
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

std::string OffsetsString(uint64_t b, uint64_t e) { return StrCat("[", b, ", ", e, "]"); }

// ShapeString for messages about untrusted headers: at most 16 dims shown.
std::string ShapeMsg(const std::vector<int64_t>& shape) {
  constexpr size_t kMax = 16;
  if (shape.size() <= kMax) return ShapeString(shape);
  std::vector<int64_t> head(shape.begin(), shape.begin() + kMax);
  std::string s = ShapeString(head);
  s.insert(s.size() - 1, StrCat(", ... (", shape.size(), " dims)"));
  return s;
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Entry ParseTensorEntry(const std::string& path, const std::string& name, const json& v,
                       uint64_t data_size) {
  const std::string where = StrCat(path, ": tensor ", Quoted(name), ": ");
  if (!v.is_object())
    Fail(where, "expected an object with dtype, shape and data_offsets, found ", JsonKind(v));

  Entry e;
  e.view.name = name;
  e.view.file = path;

  // dtype
  auto it = v.find("dtype");
  if (it == v.end()) Fail(where, "missing field \"dtype\"");
  if (!it->is_string()) Fail(where, "field \"dtype\" must be a string, found ", JsonKind(*it));
  const std::string& dt = it->get_ref<const std::string&>();
  std::optional<DType> dtype = ParseDType(dt);
  if (!dtype)
    Fail(where, "unknown dtype ", Quoted(dt),
         " (expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
  e.view.dtype = *dtype;

  // shape
  it = v.find("shape");
  if (it == v.end()) Fail(where, "missing field \"shape\"");
  if (!it->is_array())
    Fail(where, "field \"shape\" must be an array of integers, found ", JsonKind(*it));
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& d = (*it)[i];
    std::optional<int64_t> dim = NonNegativeInt(d);
    if (!dim) {
      if (d.is_number_integer() && !d.is_number_unsigned())
        Fail(where, "shape dimension ", i, " is negative: ", JsonShort(d));
      Fail(where, "shape dimension ", i, " must be a non-negative integer, found ", JsonKind(d),
           " ", JsonShort(d));
    }
    e.view.shape.push_back(*dim);
    if (!overflow && !CheckedNumelStep(numel, uint64_t(*dim), &numel)) overflow = true;
  }
  if (overflow)
    Fail(where, "shape ", ShapeMsg(e.view.shape), " has too many elements (overflow)");
  uint64_t need = 0;
  if (!CheckedMul(numel, DTypeSize(e.view.dtype), &need))
    Fail(where, "shape ", ShapeMsg(e.view.shape), " of dtype ", DTypeName(e.view.dtype),
         " needs more bytes than fit in 64 bits (overflow)");

  // data_offsets
  it = v.find("data_offsets");
  if (it == v.end()) Fail(where, "missing field \"data_offsets\"");
  if (!it->is_array() || it->size() != 2)
    Fail(where, "field \"data_offsets\" must be [begin, end], found ", JsonShort(*it));
  std::optional<int64_t> b = NonNegativeInt((*it)[0]);
  std::optional<int64_t> en = NonNegativeInt((*it)[1]);
  if (!b || !en)
    Fail(where, "data_offsets must be two non-negative integers, found ", JsonShort(*it));
  e.begin = uint64_t(*b);
  e.end = uint64_t(*en);
  if (e.begin > e.end)
    Fail(where, "data_offsets ", OffsetsString(e.begin, e.end), " have begin > end");
  if (e.end > data_size)
    Fail(where, "data_offsets ", OffsetsString(e.begin, e.end),
         " end beyond the data section, which has ", data_size, " bytes (truncated file?)");
  if (e.end - e.begin != need)
    Fail(where, "data_offsets ", OffsetsString(e.begin, e.end), " hold ", e.end - e.begin,
         " bytes but dtype ", DTypeName(e.view.dtype), " shape ", ShapeMsg(e.view.shape),
         " needs ", need);
  e.view.nbytes = size_t(need);
  return e;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Shard names come from an untrusted index: a plain file name only.
void CheckShardName(const std::string& index_path, const std::string& tensor,
                    const std::string& shard) {
  if (shard.empty() || shard.find('/') != std::string::npos ||
      shard.find('\\') != std::string::npos || shard.find("..") != std::string::npos ||
      shard.find('\0') != std::string::npos)
    Fail(index_path, ": weight_map: tensor ", Quoted(tensor), " names shard ", Quoted(shard),
         ", expected a plain file name in the same directory (no '/', '..')");
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

ParsedSafetensors ParseSafetensors(const uint8_t* bytes, size_t size, const std::string& path) {
  if (size < 8)
    Fail(path, ": file is ", size,
         " bytes, shorter than the 8-byte header length field (not a safetensors file?)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderSize)
    Fail(path, ": header length ", n, " exceeds the ", kMaxHeaderSize,
         "-byte limit (not a safetensors file?)");
  if (n > size - 8)
    Fail(path, ": header length ", n, " is larger than the ", size - 8,
         " bytes that follow it (file is ", size, " bytes; truncated file?)");
  const uint64_t data_size = size - 8 - n;
  const char* hbegin = reinterpret_cast<const char*>(bytes + 8);
  const char* hend = hbegin + n;

  // Top-level keys are reported at depth 1; record the first duplicate.
  std::set<std::string> seen;
  std::optional<std::string> duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && !duplicate) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(hbegin, hend, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    Fail(path, ": header (", n, " bytes) is not valid JSON: ", JsonErrorText(e));
  }
  if (!header.is_object())
    Fail(path, ": header must be a JSON object, found ", JsonKind(header));
  if (duplicate) {
    if (*duplicate == "__metadata__") Fail(path, ": header has \"__metadata__\" twice");
    Fail(path, ": tensor ", Quoted(*duplicate), " appears twice in the header (duplicate name)");
  }

  ParsedSafetensors out;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        Fail(path, ": \"__metadata__\" must be an object of string values, found ",
             JsonKind(value));
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          Fail(path, ": \"__metadata__\" key ", Quoted(mk), " must be a string, found ",
               JsonKind(mv));
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(ParseTensorEntry(path, key, value, data_size));
  }

  // Tile check: sorted by (begin, end), every tensor starts where the previous
  // one ended. Zero-byte tensors fit anywhere on the boundary.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.view.name < b.view.name;
  });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      Fail(path, ": tensor ", Quoted(e.view.name), ": data_offsets ",
           OffsetsString(e.begin, e.end), " overlap tensor ", Quoted(prev->view.name),
           " at ", OffsetsString(prev->begin, prev->end));
    if (e.begin > cursor)
      Fail(path, ": tensor ", Quoted(e.view.name), ": data_offsets ",
           OffsetsString(e.begin, e.end), " leave a hole of ", e.begin - cursor,
           " unused bytes at [", cursor, ", ", e.begin, ") ",
           prev ? StrCat("after tensor ", Quoted(prev->view.name))
                : std::string("at the start of the data section"),
           " (tensors must be contiguous)");
    cursor = e.end;
    if (e.end > e.begin || !prev) prev = &e;
  }
  if (cursor != data_size)
    Fail(path, ": data section has ", data_size, " bytes but the tensors cover only ", cursor,
         " (", data_size - cursor, " unused trailing bytes)");

  const uint8_t* data = bytes + 8 + n;
  out.tensors.reserve(entries.size());
  for (Entry& e : entries) {
    e.view.data = data + e.begin;
    e.view.offset = size_t(8 + n + e.begin);
    out.tensors.push_back(std::move(e.view));
  }
  return out;
}

// ---------------------------------------------------------------- SafetensorsFile

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const int fd = OpenRegularFile(path, "safetensors file");
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    static const uint8_t kEmpty[1] = {0};
    f->parsed_ = ParseSafetensors(kEmpty, 0, path);  // throws: too short
    return f;
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) Fail(path, ": mmap of ", size, " bytes failed: ", std::strerror(err));
  f->map_ = m;
  f->map_size_ = size;
  f->parsed_ = ParseSafetensors(static_cast<const uint8_t*>(m), size, path);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  for (const TensorView& t : parsed_.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ---------------------------------------------------------------- Checkpoint

std::unique_ptr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    Fail(dir, ": checkpoint directory does not exist (", std::strerror(errno), ")");
  if (!S_ISDIR(st.st_mode)) Fail(dir, ": checkpoint path is not a directory");

  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  const std::string index_path = JoinPath(dir, kIndexName);

  if (PathExists(index_path)) {
    const std::string text = ReadRegularFile(index_path, kMaxIndexSize, "safetensors index");
    json index;
    try {
      index = json::parse(text);
    } catch (const json::exception& e) {
      Fail(index_path, ": not valid JSON: ", JsonErrorText(e));
    }
    if (!index.is_object()) Fail(index_path, ": expected a JSON object, found ", JsonKind(index));
    auto wm = index.find("weight_map");
    if (wm == index.end()) Fail(index_path, ": missing \"weight_map\"");
    if (!wm->is_object())
      Fail(index_path, ": \"weight_map\" must be an object {tensor name: shard file}, found ",
           JsonKind(*wm));

    std::map<std::string, std::string> weight_map;  // tensor -> shard
    std::set<std::string> shards;
    for (auto& [name, shard] : wm->items()) {
      if (!shard.is_string())
        Fail(index_path, ": weight_map: tensor ", Quoted(name),
             " must map to a shard file name string, found ", JsonKind(shard));
      const std::string& s = shard.get_ref<const std::string&>();
      CheckShardName(index_path, name, s);
      weight_map[name] = s;
      shards.insert(s);
    }
    if (weight_map.empty()) Fail(index_path, ": \"weight_map\" is empty");

    for (const std::string& shard : shards) {
      const std::string shard_path = JoinPath(dir, shard);
      if (!PathExists(shard_path))  // not a regular file: Open says so
        Fail(index_path, ": shard ", Quoted(shard), " listed in the index does not exist (",
             shard_path, ")");
      ck->files_.push_back(SafetensorsFile::Open(shard_path));
    }
    // First where each tensor actually is, to report a name in two shards as such.
    std::map<std::string, std::pair<const SafetensorsFile*, const TensorView*>> found;
    for (const auto& f : ck->files_) {
      for (const TensorView& t : f->tensors()) {
        auto [it, inserted] = found.try_emplace(t.name, f.get(), &t);
        if (!inserted)
          Fail(index_path, ": tensor ", Quoted(t.name), " is present in two shards: ",
               it->second.first->path(), " and ", f->path());
      }
    }
    for (const auto& [name, where] : found) {
      auto w = weight_map.find(name);
      if (w == weight_map.end())
        Fail(where.first->path(), ": tensor ", Quoted(name), " is present in this shard but not listed in ",
             index_path);
      if (JoinPath(dir, w->second) != where.first->path())
        Fail(where.first->path(), ": tensor ", Quoted(name), " is present in this shard but ",
             index_path, " places it in shard ", Quoted(w->second));
      ck->by_name_[name] = where.second;
    }
    for (const auto& [name, shard] : weight_map) {
      if (!ck->by_name_.count(name))
        Fail(index_path, ": tensor ", Quoted(name), " is listed in shard ", Quoted(shard),
             " but is absent from ", JoinPath(dir, shard));
    }
    return ck;
  }

  std::string single = JoinPath(dir, kSingleName);
  if (!PathExists(single)) {  // not a regular file: Open says so
    std::vector<std::string> found;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* ent = ::readdir(d)) {
        std::string_view nm = ent->d_name;
        constexpr std::string_view kExt = ".safetensors";
        if (nm.size() > kExt.size() && nm.substr(nm.size() - kExt.size()) == kExt &&
            IsRegularFile(JoinPath(dir, std::string(nm))))
          found.emplace_back(nm);
      }
      ::closedir(d);
    } else {
      Fail(dir, ": cannot list directory: ", std::strerror(errno));
    }
    if (found.size() != 1) {
      std::sort(found.begin(), found.end());
      std::string extra;
      if (found.size() > 1) {
        extra = StrCat(" (found ", found.size(), " *.safetensors files, which one to use is ambiguous: ",
                       Printable(found[0]), ", ", Printable(found[1]),
                       found.size() > 2 ? ", ..." : "", ")");
      }
      Fail("no ", kSingleName, " or ", kIndexName, " in ", dir, extra);
    }
    single = JoinPath(dir, found[0]);
  }
  ck->files_.push_back(SafetensorsFile::Open(single));
  for (const TensorView& t : ck->files_[0]->tensors()) ck->by_name_[t.name] = &t;
  return ck;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& kv : by_name_) names.push_back(kv.first);  // std::map: already sorted
  return names;
}

void Checkpoint::AdviseHugePages() const {
  // The tensors of a file tile its data section exactly (checked at open), so
  // [first tensor, last tensor end) is the data section of the mapping. Round
  // outwards to pages: the mapping itself is page aligned and page rounded.
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096);
  for (const auto& f : files_) {
    const auto& ts = f->tensors();
    if (ts.empty()) continue;
    const uintptr_t lo = reinterpret_cast<uintptr_t>(ts.front().data);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(ts.back().data) + ts.back().nbytes;
    if (hi <= lo) continue;
    const uintptr_t a = lo & ~(page - 1);
    const uintptr_t b = (hi + page - 1) & ~(page - 1);
#ifdef MADV_HUGEPAGE
    (void)::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#endif
    (void)::madvise(reinterpret_cast<void*>(a), b - a, MADV_WILLNEED);
  }
}

void Checkpoint::ReleasePages(const TensorView& t) {
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096);
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(t.data) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) & ~(page - 1);
  if (hi > lo) (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

// ---------------------------------------------------------------- writing

void WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    const std::string where = StrCat(path, ": tensor ", Quoted(t.name), ": ");
    if (t.name == "__metadata__") Fail(where, "name is reserved for metadata");
    if (!names.insert(t.name).second) Fail(where, "written twice (duplicate name)");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) Fail(where, "negative dimension in shape ", ShapeString(t.shape));
      if (!CheckedNumelStep(numel, uint64_t(d), &numel))
        Fail(where, "shape ", ShapeString(t.shape), " overflows");
    }
    uint64_t need = 0;
    if (!CheckedMul(numel, DTypeSize(t.dtype), &need))
      Fail(where, "shape ", ShapeString(t.shape), " overflows");
    if (t.nbytes != need)
      Fail(where, "data has ", t.nbytes, " bytes but dtype ", DTypeName(t.dtype), " shape ",
           ShapeString(t.shape), " needs ", need);
    if (need > 0 && t.data == nullptr) Fail(where, "data is null");
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = DTypeName(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + need};
    header[t.name] = std::move(e);
    offset += need;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    Fail(path, ": cannot encode the header (tensor names and metadata must be UTF-8): ",
         JsonErrorText(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));

  AtomicFile file(path);
  file.Write(len, 8);
  file.Write(text);
  for (const TensorToWrite& t : tensors)
    if (t.nbytes) file.Write(t.data, t.nbytes);
  file.Commit();
}

std::vector<std::vector<size_t>> GroupIntoShards(const std::vector<size_t>& bytes, size_t limit) {
  std::vector<std::vector<size_t>> shards(1);
  size_t in_shard = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (in_shard > 0 && in_shard + bytes[i] > limit) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += bytes[i];
  }
  return shards;
}

}  // namespace rg
