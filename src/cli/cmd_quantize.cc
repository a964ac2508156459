// rgemma quantize -m DIR --to {bf16,q8,q4,q8_256,q4_256} --out DIR2
// Writes a model directory whose matrices (linear layers, embedding / output
// head) are stored in the target format, mixed as MatrixFormatFor decides
// (--to q4 keeps the embedding / output head at q8); norms, biases, conv and
// RG-LRU parameters stay f32. bf16 output is a plain Hugging Face checkpoint;
// q8/q4 output is safetensors with the packed bytes as U8 tensors and the
// formats in the metadata (the format: model/quantized_dir.h; block layout in
// ops/quant.h), mmapped at load.
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "model/quantized_dir.h"
#include "model/weight_convert.h"
#include "tokenizer/tokenizer.h"

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
  // By identity, not by spelling ("qs/", "./qs", a symlink to qs), and
  // before anything is written: the input must survive any --out.
  RG_CHECK(!SameFile(a.out, a.model), "--out ", a.out, " is the input directory ", a.model,
           ": write the quantized copy to another directory");
  RG_CHECK(!a.force || !IsSameOrInside(a.model, a.out), "--out ", a.out, " contains the input directory ", a.model,
           ": --force would delete it");
  AtomicDirectory out_dir(a.out, a.force, "--out");  // a.out changes only at Commit()
  const std::string out = out_dir.path();

  ThreadPool pool(ResolveThreads(a.threads));
  Progress progress("quantizing to " + a.to, 0);
  const QuantizedSizes sizes =
      WriteQuantizedTensors(*ckpt, a.model, config, *target, out, size_t(a.shard_gb * 1e9), pool,
                            [&](size_t done, size_t total) { progress.Set(done, total); });
  WriteFileAtomic(out + "/config.json", config_json);
  if (!tokenizer.empty()) WriteFileAtomic(out + "/tokenizer.model", tokenizer);
  out_dir.Commit();
  progress.Done();
  const WeightFormat embed_fmt = MatrixFormatFor(TensorRole::kEmbedding, *target);
  const std::string embed_note =
      embed_fmt == *target ? "" : std::string(" (embedding / output head ") + WeightFormatName(embed_fmt) + ")";
  std::fprintf(stderr, "wrote %s: %s matrices%s, %.2f GB (from %.2f GB)\n", a.out.c_str(), a.to.c_str(),
               embed_note.c_str(), double(sizes.bytes_out) / 1e9, double(sizes.bytes_in) / 1e9);
}

}  // namespace

void RegisterQuantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a copy of a model with bf16 / 8-bit / 4-bit matrices (q4: embedding / output head at 8 bits)");
  AddModelDirFlag(cmd, &a->model, "Input model directory")->required();
  cmd->add_option("--to", a->to, "Target format: bf16, q8 (int8) or q4 (embedding / output head kept at q8); "
                  "q8_256 / q4_256: the same with one scale per 256 columns, RG-LRU gates in int8 (faster prefill, less accurate)")->required()
      ->check(CLI::IsMember({"bf16", "q8", "int8", "q4", "q8_256", "q4_256"}));
  cmd->add_option("--out", a->out, "Output directory (new or empty; written under a temporary name, then renamed)")
      ->required()->check(NonEmpty);
  cmd->add_flag("--force", a->force, "Replace the contents of a non-empty --out");
  AddThreadsFlag(cmd, &a->threads);
  cmd->add_option("--shard-gb", a->shard_gb, "Maximum shard size in GB")->check(CLI::Range(0.001, 1000.0));
  cmd->callback([a] { RunQuantize(*a); });
}

}  // namespace rg::cli
