// rgemma quantize -m DIR --to {bf16,q8,q4,q8_256,q4_256} --out DIR2
// Writes a model directory whose matrices (linear layers, embedding / output
// head) are stored in the target format, mixed as MatrixFormatFor decides
// (--to q4 keeps the embedding / output head at q8); norms, biases, conv and
// RG-LRU parameters stay f32. bf16 output is a plain Hugging Face checkpoint;
// q8/q4 output is safetensors with the packed bytes as U8 tensors and the
// formats in the metadata (rgemma_matrix_format, plus rgemma_tensor_formats
// for the tensors of a file in another format; model/weight_convert.h, layout
// in ops/quant.h), mmapped at load.
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file_io.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/tensor_specs.h"
#include "tokenizer/tokenizer.h"
#include "model/weight_convert.h"
#include "ops/quant.h"

namespace rg::cli {
namespace {

struct QuantizeArgs {
  std::string model, to, out;
  int threads = 0;
  double shard_gb = 2.0;
  bool force = false;
};

void RunQuantize(const QuantizeArgs& a) {
  const std::optional<WeightFormat> target = ParseWeightFormat(a.to);
  RG_CHECK(target && *target != WeightFormat::F32, "--to: '", a.to, "' is not one of bf16, q8 (int8), q4, q8_256, q4_256");
  // The files copied as they are, read first: a bad one fails before any work.
  const std::string config_json = ReadRegularFile(a.model + "/config.json", kMaxConfigBytes, "model config");
  const Config config = ParseHFConfig(config_json, a.model + "/config.json");
  const std::string tokenizer_path = a.model + "/tokenizer.model";
  const std::string tokenizer = std::filesystem::exists(tokenizer_path)
                                    ? ReadRegularFile(tokenizer_path, kMaxTokenizerBytes, "tokenizer")
                                    : std::string();
  auto ckpt = Checkpoint::Open(a.model);
  for (const auto& f : ckpt->files())
    RG_CHECK(!f->metadata().count(kQuantFormatKey), f->path(), ": already quantized; quantize the original checkpoint");
  // By identity, not by spelling ("qs/", "./qs", a symlink to qs), and
  // before anything is written: the input must survive any --out.
  RG_CHECK(!SameFile(a.out, a.model), "--out ", a.out, " is the input directory ", a.model,
           ": write the quantized copy to another directory");
  RG_CHECK(!a.force || !IsSameOrInside(a.model, a.out), "--out ", a.out, " contains the input directory ", a.model,
           ": --force would delete it");
  AtomicDirectory out_dir(a.out, a.force, "--out");  // a.out changes only at Commit()
  const std::string out = out_dir.path();

  ThreadPool pool(ResolveThreads(a.threads));
  const bool packed = IsQuantizedFormat(*target);

  struct Out {
    TensorToWrite desc;
    AlignedBuffer data;
  };
  std::vector<const TensorView*> inputs;
  std::vector<TensorSpec> specs;
  size_t total_in = 0;
  ForEachTensor(config, [&](const TensorSpec& s) {
    const TensorView* tv = ckpt->Find(s.name);
    if (!tv) {
      RG_CHECK(!s.required, a.model, ": missing tensor '", s.name, "' (expected shape ", ShapeString(s.shape), ")");
      return;
    }
    RG_CHECK(tv->shape == s.shape, tv->file, ": tensor '", s.name, "' has shape ", ShapeString(tv->shape),
             " but config.json implies ", ShapeString(s.shape));
    inputs.push_back(tv);
    specs.push_back(s);
    total_in += tv->nbytes;
  });

  Progress progress("quantizing to " + a.to, total_in);
  nlohmann::ordered_json index;
  index["metadata"] = nlohmann::ordered_json::object();
  index["weight_map"] = nlohmann::ordered_json::object();
  std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (packed) {
    meta[kQuantFormatKey] = WeightFormatName(*target);
    meta[kQuantVersionKey] = std::to_string(kQuantFormatVersion);
  }
  // Shards of at most shard_gb, each converted, written and freed in turn.
  std::vector<std::vector<size_t>> shards(1);
  size_t bytes = 0, total_out = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const size_t out_bytes =
        IsMatrixRole(specs[i].role)
            ? MatrixStorageBytes(MatrixFormatFor(specs[i].role, *target), specs[i].shape[0], specs[i].shape[1])
            : size_t(specs[i].numel()) * 4;
    if (bytes > 0 && bytes + out_bytes > size_t(a.shard_gb * 1e9)) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(i);
    bytes += out_bytes;
    total_out += out_bytes;
  }
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
        const WeightFormat fmt = MatrixFormatFor(s.role, *target);
        if (fmt != *target) {
          RG_CHECK(packed && IsQuantizedFormat(fmt), "quantize: no on-disk form for ", WeightFormatName(fmt),
                   " tensor '", s.name, "' in a ", a.to, " model");
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
      progress.Add(tv.nbytes);
    }
    std::vector<TensorToWrite> descs;
    for (const Out& o : outs) descs.push_back(o.desc);
    std::map<std::string, std::string> file_meta = meta;
    if (!other_formats.empty()) file_meta[kTensorFormatsKey] = TensorFormatsJson(other_formats);
    WriteSafetensors(out + "/" + name, descs, file_meta);
  }
  if (shards.size() > 1) {
    index["metadata"]["total_size"] = total_out;
    WriteFileAtomic(out + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  WriteFileAtomic(out + "/config.json", config_json);
  if (!tokenizer.empty()) WriteFileAtomic(out + "/tokenizer.model", tokenizer);
  out_dir.Commit();
  progress.Done();
  const WeightFormat embed_fmt = MatrixFormatFor(TensorRole::kEmbedding, *target);
  const std::string embed_note =
      embed_fmt == *target ? "" : std::string(" (embedding / output head ") + WeightFormatName(embed_fmt) + ")";
  std::fprintf(stderr, "wrote %s: %s matrices%s, %.2f GB (from %.2f GB)\n", a.out.c_str(), a.to.c_str(),
               embed_note.c_str(), double(total_out) / 1e9, double(total_in) / 1e9);
}

}  // namespace

void RegisterQuantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a copy of a model with bf16 / 8-bit / 4-bit matrices (q4: embedding / output head at 8 bits)");
  cmd->add_option("--model,-m", a->model, "Input model directory")->required()->check(NonEmpty);
  cmd->add_option("--to", a->to, "Target format: bf16, q8 (int8) or q4 (embedding / output head kept at q8); "
                  "q8_256 / q4_256: the same with one scale per 256 columns (faster prefill, less accurate)")->required()
      ->check(CLI::IsMember({"bf16", "q8", "int8", "q4", "q8_256", "q4_256"}));
  cmd->add_option("--out", a->out, "Output directory (new or empty; written under a temporary name, then renamed)")
      ->required()->check(NonEmpty);
  cmd->add_flag("--force", a->force, "Replace the contents of a non-empty --out");
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--shard-gb", a->shard_gb, "Maximum shard size in GB")->check(CLI::Range(0.001, 1000.0));
  cmd->callback([a] { RunQuantize(*a); });
}

}  // namespace rg::cli
