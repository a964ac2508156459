// rgemma forward --model DIR --tokens IN.safetensors --out OUT.safetensors [--mode prefill|decode]
// For every I32 [T] tensor "tokens.<i>" in IN, runs the sequence from position
// 0 and writes "logits.<i>" F32 [T, vocab]. Other tensors in IN are ignored.
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/precision_flag.h"
#include "core/error.h"
#include "generate/session.h"
#include "io/safetensors.h"

namespace rg::cli {
namespace {

struct ForwardArgs {
  std::string model, tokens, out, mode = "prefill", precision = "exact";
  int threads = 0;
  int64_t chunk = kDefaultPrefillChunk;
};

void RunForward(const ForwardArgs& a) {
  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, /*quiet=*/true);
  auto in = SafetensorsFile::Open(a.tokens);
  const int64_t V = weights->config.vocab_size;

  std::vector<std::vector<float>> outputs;
  std::vector<TensorToWrite> to_write;
  Session session(weights, pool, a.mode == "decode" ? 1 : a.chunk, KernelOptionsFor(a.precision));
  for (const TensorView& tv : in->tensors()) {
    if (tv.name.rfind("tokens.", 0) != 0) continue;
    RG_CHECK(tv.dtype == DType::I32 && tv.shape.size() == 1 && tv.shape[0] > 0, a.tokens, ": tensor '",
             tv.name, "' must be I32 [T] with T > 0, got ", DTypeName(tv.dtype), " ", ShapeString(tv.shape));
    const int64_t T = tv.shape[0];
    std::vector<int32_t> ids(static_cast<size_t>(T));
    std::memcpy(ids.data(), tv.data, size_t(T) * 4);
    outputs.emplace_back(static_cast<size_t>(T * V));
    float* out = outputs.back().data();
    session.Reset();
    if (a.mode == "prefill") {
      session.ForwardAll(ids, out);
    } else {
      for (int64_t t = 0; t < T; ++t) {
        const float* logits = session.Step(ids[t]);
        std::copy(logits, logits + V, out + t * V);
      }
    }
    const std::string name = "logits." + tv.name.substr(7);
    to_write.push_back({name, DType::F32, {T, V}, out, size_t(T * V) * 4});
  }
  RG_CHECK(!to_write.empty(), a.tokens, ": no tensors named tokens.<i> (I32 [T]) found");
  WriteSafetensors(a.out, to_write);
}

}  // namespace

void RegisterForward(CLI::App& app) {
  auto a = std::make_shared<ForwardArgs>();
  CLI::App* cmd = app.add_subcommand("forward", "Logits of token sequences (tokens.<i> -> logits.<i>)");
  cmd->add_option("--model,-m", a->model, "Model directory (config.json + safetensors)")->required();
  cmd->add_option("--tokens", a->tokens, "Input safetensors holding I32 tensors tokens.<i>")->required();
  cmd->add_option("--out", a->out, "Output safetensors for F32 logits.<i> [T, vocab]")->required();
  cmd->add_option("--mode", a->mode, "prefill: one parallel pass; decode: one token at a time")
      ->check(CLI::IsMember({"prefill", "decode"}));
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--chunk", a->chunk, "Rows per prefill pass")->check(CLI::Range(1, 1 << 16));
  AddPrecisionFlag(cmd, &a->precision);
  cmd->callback([a] { RunForward(*a); });
}

}  // namespace rg::cli
