#include "model/quantized_dir.h"

#include <cstdio>
#include <map>
#include <numeric>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/weight_convert.h"
#include "ops/quant.h"

namespace rg {
namespace {

// The rgemma_tensor_formats value of `file`, parsed: throws rg::Error (one
// line, naming the file and the offending tensor) unless it is a JSON object
// whose values are "q8" or "q4".
std::map<std::string, WeightFormat> ParseTensorFormats(const std::string& value, const std::string& file) {
  const nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  RG_CHECK(j.is_object(), file, ": metadata ", kTensorFormatsKey,
           " is not a JSON object of tensor name -> \"q8\" | \"q4\"");
  std::map<std::string, WeightFormat> out;
  for (const auto& [name, v] : j.items()) {
    RG_CHECK(v.is_string(), file, ": metadata ", kTensorFormatsKey, ": tensor '", name, "' has format ", v.dump(),
             "; expected \"q8\" or \"q4\"");
    const std::optional<WeightFormat> f = ParseWeightFormat(v.get<std::string>());
    RG_CHECK(f && IsQuantizedFormat(*f) && v.get<std::string>() == WeightFormatName(*f), file, ": metadata ",
             kTensorFormatsKey, ": tensor '", name, "' has unknown format ", v.dump(), "; expected \"q8\" or \"q4\"");
    out[name] = *f;
  }
  return out;
}

// The rgemma_tensor_formats value for `formats` (compact JSON object).
std::string TensorFormatsJson(const std::map<std::string, WeightFormat>& formats) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, f] : formats) j[name] = WeightFormatName(f);
  return j.dump();
}

}  // namespace

PackedLayout ReadPackedLayout(const Checkpoint& ckpt) {
  PackedLayout layout;
  for (const auto& f : ckpt.files()) {
    auto it = f->metadata().find(kQuantFormatKey);
    auto listed = f->metadata().find(kTensorFormatsKey);
    if (it == f->metadata().end()) {
      RG_CHECK(listed == f->metadata().end(), f->path(), ": metadata ", kTensorFormatsKey, " without ",
               kQuantFormatKey);
      continue;
    }
    auto fmt = ParseWeightFormat(it->second);
    RG_CHECK(fmt && IsQuantizedFormat(*fmt), f->path(), ": metadata ", kQuantFormatKey, " is '", it->second,
             "'; expected q8 or q4");
    auto ver = f->metadata().find(kQuantVersionKey);
    RG_CHECK(ver != f->metadata().end() && ver->second == std::to_string(kQuantFormatVersion), f->path(),
             ": packed weights of format version '", ver == f->metadata().end() ? "(none)" : ver->second,
             "'; this rgemma reads version ", kQuantFormatVersion, " (re-run rgemma quantize)");
    RG_CHECK(!layout.format || *layout.format == *fmt, f->path(), ": shards disagree on the packed format");
    layout.format = fmt;
    if (listed == f->metadata().end()) continue;
    for (const auto& [name, tf] : ParseTensorFormats(listed->second, f->path())) {
      RG_CHECK(f->Find(name), f->path(), ": metadata ", kTensorFormatsKey, " lists tensor '", name,
               "', which is not in this file");
      layout.tensor_formats[name] = tf;
    }
  }
  return layout;
}

std::optional<WeightMatrix> PackedMatrix(const PackedLayout& layout, const TensorSpec& spec, const TensorView& tv) {
  auto declared = layout.tensor_formats.find(spec.name);
  const bool listed = declared != layout.tensor_formats.end();
  RG_CHECK(!listed || IsMatrixRole(spec.role), tv.file, ": metadata ", kTensorFormatsKey, " lists tensor '",
           spec.name, "', which is not a matrix (only matrices are packed)");
  if (!IsMatrixRole(spec.role)) return std::nullopt;
  const WeightFormat fmt = listed ? declared->second : *layout.format;
  const size_t want = MatrixStorageBytes(fmt, spec.shape[0], spec.shape[1]);
  RG_CHECK(tv.dtype == DType::U8 && tv.shape == std::vector<int64_t>{int64_t(want)}, tv.file, ": tensor '",
           spec.name, "' is declared ", WeightFormatName(fmt), " (", listed ? kTensorFormatsKey : kQuantFormatKey,
           ") and must hold U8 [", want, "] bytes for shape ", ShapeString(spec.shape), ", got ",
           DTypeName(tv.dtype), " ", ShapeString(tv.shape));
  return WeightMatrix{fmt, spec.shape[0], spec.shape[1], tv.data};
}

QuantizedSizes WriteQuantizedTensors(const Checkpoint& ckpt, const std::string& source, const Config& c,
                                     WeightFormat target, const std::string& dir, size_t shard_bytes,
                                     ThreadPool& pool, const std::function<void(size_t, size_t)>& progress) {
  for (const auto& f : ckpt.files())
    RG_CHECK(!f->metadata().count(kQuantFormatKey), f->path(), ": already quantized; quantize the original checkpoint");
  const bool packed = IsQuantizedFormat(target);

  struct Out {
    TensorToWrite desc;
    AlignedBuffer data;
  };
  std::vector<const TensorView*> inputs;
  std::vector<TensorSpec> specs;
  size_t total_in = 0;
  ForEachTensor(c, [&](const TensorSpec& s) {
    const TensorView* tv = ckpt.Find(s.name);
    if (!tv) {
      RG_CHECK(!s.required, source, ": missing tensor '", s.name, "' (expected shape ", ShapeString(s.shape), ")");
      return;
    }
    RG_CHECK(tv->shape == s.shape, tv->file, ": tensor '", s.name, "' has shape ", ShapeString(tv->shape),
             " but config.json implies ", ShapeString(s.shape));
    inputs.push_back(tv);
    specs.push_back(s);
    total_in += tv->nbytes;
  });

  size_t done_in = 0;
  nlohmann::ordered_json index;
  index["metadata"] = nlohmann::ordered_json::object();
  index["weight_map"] = nlohmann::ordered_json::object();
  std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (packed) {
    meta[kQuantFormatKey] = WeightFormatName(target);
    meta[kQuantVersionKey] = std::to_string(kQuantFormatVersion);
  }
  // Shards of at most shard_bytes, each converted, written and freed in turn.
  std::vector<size_t> sizes;
  for (const TensorSpec& s : specs)
    sizes.push_back(IsMatrixRole(s.role) ? MatrixStorageBytes(MatrixFormatFor(s.role, target), s.shape[0], s.shape[1])
                                         : size_t(s.numel()) * 4);
  const std::vector<std::vector<size_t>> shards = GroupIntoShards(sizes, shard_bytes);
  const size_t total_out = std::accumulate(sizes.begin(), sizes.end(), size_t(0));
  char name[64];
  for (size_t si = 0; si < shards.size(); ++si) {
    if (shards.size() == 1) std::snprintf(name, sizeof name, "model.safetensors");
    else std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", si + 1, shards.size());
    std::vector<Out> outs;
    outs.reserve(shards[si].size());
    std::map<std::string, WeightFormat> other_formats;  // this file's rgemma_tensor_formats
    for (size_t i : shards[si]) {
      const TensorSpec& s = specs[i];
      const TensorView& tv = *inputs[i];
      Out o;
      if (IsMatrixRole(s.role)) {
        const WeightFormat fmt = MatrixFormatFor(s.role, target);
        if (fmt != target) {
          RG_CHECK(packed && IsQuantizedFormat(fmt), "quantize: no on-disk form for ", WeightFormatName(fmt),
                   " tensor '", s.name, "' in a ", WeightFormatName(target), " model");
          other_formats[s.name] = fmt;
        }
        const size_t n = MatrixStorageBytes(fmt, s.shape[0], s.shape[1]);
        o.data.Resize(n);
        ConvertMatrix(tv, fmt, o.data.data(), &pool);
        o.desc = {s.name, packed ? DType::U8 : DType::BF16,
                  packed ? std::vector<int64_t>{int64_t(n)} : s.shape, o.data.data(), n};
      } else {
        o.data.Resize(size_t(s.numel()) * 4);
        ConvertToF32(tv, o.data.data<float>());
        o.desc = {s.name, DType::F32, s.shape, o.data.data(), o.data.size()};
      }
      outs.push_back(std::move(o));
      index["weight_map"][s.name] = name;
      progress(done_in += tv.nbytes, total_in);
    }
    std::vector<TensorToWrite> descs;
    for (const Out& o : outs) descs.push_back(o.desc);
    std::map<std::string, std::string> file_meta = meta;
    if (!other_formats.empty()) file_meta[kTensorFormatsKey] = TensorFormatsJson(other_formats);
    WriteSafetensors(dir + "/" + name, descs, file_meta);
  }
  if (shards.size() > 1) {
    index["metadata"]["total_size"] = total_out;
    WriteFileAtomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  return {total_in, total_out};
}

}  // namespace rg
