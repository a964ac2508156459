// rgemma init --preset {2b,9b} --dtype {bf16,f32} --seed N --out DIR
// Writes a complete Hugging Face-layout model directory with random weights of
// the real shapes (config.json as the Hub's, safetensors shards + index), for
// benchmarks and demos where the real weights cannot be downloaded.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "model/tensor_specs.h"
#include "tokenizer/tokenizer.h"

namespace rg::cli {
namespace {

struct InitArgs {
  std::string preset = "2b", dtype = "bf16", out, tokenizer;
  uint64_t seed = 0;
  int threads = 0;
  bool force = false;
  double shard_gb = 2.0;
  // Optional overrides of the preset (small test models with real-size windows).
  int64_t hidden_size = 0, vocab_size = 0, num_layers = 0, num_heads = 0, lru_width = 0,
          mlp_width = 0, window = 0;
};

// splitmix64: a tiny, fast, seedable generator; one stream per (tensor, row)
// so the output does not depend on the thread count.
struct SplitMix {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Approximately standard normal: sum of 4 uniforms, rescaled (mean 0, var 1).
  float Normal() {
    float sum = 0.f;
    for (int i = 0; i < 4; ++i) sum += float(Next() >> 40) * (1.f / 16777216.f);
    return (sum - 2.f) * 1.7320508f;
  }
};

uint64_t HashName(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (char ch : s) h = (h ^ uint8_t(ch)) * 1099511628211ull;
  return h;
}

// Scales chosen so activations stay O(1) through the network and logits are
// spread like a trained model's (std a few units before the soft cap).
void FillTensor(const TensorSpec& spec, const Config& c, uint64_t seed, bool bf16, void* dst,
                ThreadPool& pool) {
  const int64_t rows = spec.shape[0];
  const int64_t cols = spec.numel() / rows;
  float std_dev = 0.f, mean = 0.f;
  const std::string& n = spec.name;
  auto ends_with = [&](const char* suf) {
    const size_t m = std::strlen(suf);
    return n.size() >= m && n.compare(n.size() - m, m, suf) == 0;
  };
  switch (spec.role) {
    case TensorRole::kEmbedding: std_dev = 1.f / std::sqrt(float(c.width)); break;
    case TensorRole::kMatrix: {
      const float fan_in = float(spec.shape[1]);
      std_dev = 1.f / std::sqrt(fan_in);
      if (ends_with("linear_out.weight") || ends_with("o_proj.weight") || ends_with("down_proj.weight"))
        std_dev *= 8.f;  // strong residual branches (as the reference fixtures do), else the tied
                         // embedding dominates and generation repeats the input token
      break;
    }
    case TensorRole::kGateBlock: std_dev = 1.f / std::sqrt(float(spec.shape[1])); break;
    case TensorRole::kConv: std_dev = 0.5f; break;
    case TensorRole::kNormScale: std_dev = 0.f; break;  // (1 + 0) = identity scale
    case TensorRole::kVector:
      if (ends_with("recurrent_param")) {
        // softplus^-1 of values that put a = exp(-8 * 0.5 * softplus(Λ)) in [0.9, 0.999].
        mean = -5.f;
        std_dev = 1.f;
      } else {
        std_dev = 0.02f;  // biases
      }
      break;
  }
  pool.ParallelFor(rows, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      SplitMix rng{HashName(n, seed) + uint64_t(r) * 0x632be59bd9b4e019ull};
      for (int64_t k = 0; k < cols; ++k) {
        float v = std_dev == 0.f ? mean : mean + std_dev * rng.Normal();
        if (spec.role == TensorRole::kVector && ends_with("recurrent_param"))
          v = std::log(std::expm1(std::exp(v)));  // Λ with softplus(Λ) = e^v
        const int64_t i = r * cols + k;
        if (bf16) static_cast<uint16_t*>(dst)[i] = F32ToBF16(v);
        else static_cast<float*>(dst)[i] = v;
      }
    }
  });
}

void RunInit(const InitArgs& a) {
  Config c = PresetConfig(a.preset);
  if (a.hidden_size) c.width = a.hidden_size;
  if (a.vocab_size) c.vocab_size = a.vocab_size;
  if (a.num_heads) c.num_heads = a.num_heads;
  if (a.lru_width) c.lru_width = a.lru_width;
  else if (a.hidden_size) c.lru_width = a.hidden_size;
  if (a.mlp_width) c.mlp_width = a.mlp_width;
  else if (a.hidden_size) c.mlp_width = 3 * a.hidden_size;
  if (a.window) c.attention_window = a.window;
  if (a.num_layers) {
    c.layers.clear();
    for (int64_t i = 0; i < a.num_layers; ++i)
      c.layers.push_back(i % 3 == 2 ? LayerKind::kAttention : LayerKind::kRecurrent);
  }
  c.head_dim = c.width / c.num_heads;
  c.Validate("rgemma init");
  const bool bf16 = a.dtype == "bf16";
  const size_t elem = bf16 ? 2 : 4;

  // The tensors, in shards of at most shard_gb.
  std::vector<TensorSpec> specs;
  std::vector<size_t> sizes;
  ForEachTensor(c, [&](const TensorSpec& s) {
    if (!s.required) return;  // tied output head: no lm_head.weight, as on the Hub
    specs.push_back(s);
    sizes.push_back(size_t(s.numel()) * elem);
  });
  const std::vector<std::vector<size_t>> shards = GroupIntoShards(sizes, size_t(a.shard_gb * 1e9));
  const size_t total_bytes = std::accumulate(sizes.begin(), sizes.end(), size_t(0));

  AtomicDirectory out(a.out, a.force, "--out");  // a.out changes only at Commit()
  const std::string dir = out.path();
  WriteFileAtomic(dir + "/config.json", HFConfigJson(c, bf16 ? "bfloat16" : "float32"));
  ThreadPool pool(ResolveThreads(a.threads));
  Progress progress("writing " + a.out, total_bytes);
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total_bytes}};
  index["weight_map"] = nlohmann::ordered_json::object();
  char file[64];
  for (size_t si = 0; si < shards.size(); ++si) {
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", si + 1, shards.size());
    std::vector<std::vector<uint8_t>> data;
    std::vector<TensorToWrite> tensors;
    for (size_t i : shards[si]) {
      const TensorSpec& s = specs[i];
      data.emplace_back(size_t(s.numel()) * elem);
      FillTensor(s, c, a.seed, bf16, data.back().data(), pool);
      tensors.push_back({s.name, bf16 ? DType::BF16 : DType::F32, s.shape, data.back().data(), data.back().size()});
      index["weight_map"][s.name] = file;
      progress.Add(data.back().size());
    }
    WriteSafetensors(dir + "/" + file, tensors, {{"format", "pt"}});
  }
  WriteFileAtomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
  if (!a.tokenizer.empty())
    WriteFileAtomic(dir + "/tokenizer.model", ReadRegularFile(a.tokenizer, kMaxTokenizerBytes, "tokenizer"));
  out.Commit();
  progress.Done();
  std::fprintf(stderr, "wrote %s: preset %s, %s, %zu shard(s), %.2f GB (random weights: output is meaningless text)\n",
               a.out.c_str(), a.preset.c_str(), a.dtype.c_str(), shards.size(), double(total_bytes) / 1e9);
}

}  // namespace

void RegisterInit(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  CLI::App* cmd = app.add_subcommand("init", "Write a random-weight model of the real 2B/9B shapes (HF layout)");
  cmd->add_option("--preset", a->preset, "Model shape")->check(CLI::IsMember({"2b", "9b"}));
  cmd->add_option("--dtype", a->dtype, "Weight dtype")->check(CLI::IsMember({"bf16", "f32"}));
  cmd->add_option("--seed", a->seed, "Random seed");
  cmd->add_option("--out", a->out, "Output directory (new or empty; written under a temporary name, then renamed)")
      ->required()->check(NonEmpty);
  cmd->add_flag("--force", a->force, "Replace the contents of a non-empty --out");
  cmd->add_option("--tokenizer", a->tokenizer, "Copy this tokenizer.model into the directory")->check(CLI::ExistingFile);
  AddThreadsFlag(cmd, &a->threads);
  cmd->add_option("--shard-gb", a->shard_gb, "Maximum shard size in GB")->check(CLI::Range(0.001, 1000.0));
  cmd->add_option("--hidden-size", a->hidden_size, "Override: hidden_size (also sets lru_width, MLP = 3x)")->check(CLI::Range(1, 65536));
  cmd->add_option("--vocab-size", a->vocab_size, "Override: vocab_size")->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--num-layers", a->num_layers, "Override: layers (R,R,A cycle)")->check(CLI::Range(1, 1024));
  cmd->add_option("--num-heads", a->num_heads, "Override: attention heads")->check(CLI::Range(1, 4096));
  cmd->add_option("--lru-width", a->lru_width, "Override: lru_width")->check(CLI::Range(1, 65536));
  cmd->add_option("--mlp-width", a->mlp_width, "Override: MLP width (intermediate_size / 2)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--window", a->window, "Override: attention_window_size")->check(CLI::Range(1, 1 << 24));
  cmd->callback([a] { RunInit(*a); });
}

}  // namespace rg::cli
