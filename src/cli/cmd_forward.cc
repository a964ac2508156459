// rgemma forward --model DIR --tokens IN.safetensors --out OUT.safetensors [--mode prefill|decode]
// For every I32 [T] tensor "tokens.<i>" in IN, runs the sequence from position
// 0 and writes "logits.<i>" F32 [T, vocab]. Other tensors in IN are ignored.
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "generate/engine.h"
#include "io/safetensors.h"

namespace rg::cli {
namespace {

struct ForwardArgs {
  ModelFlags m;
  std::string tokens, out, mode = "prefill";
  int64_t chunk = kDefaultPrefillChunk;
};

void RunForward(const ForwardArgs& a) {
  ThreadPool pool(ResolveThreads(a.m.threads));
  auto weights = LoadModel(a.m, pool, LoadNotes::kProgress);
  auto in = SafetensorsFile::Open(a.tokens);
  const int64_t V = weights->config.vocab_size;
  // decode: one token per step through the cached path; prefill: chunks of
  // `chunk` rows, every row's logits wanted.
  EngineOptions opt;
  opt.kernels = a.m.kernels();
  opt.prefill_chunk = opt.logits_chunk = a.mode == "decode" ? 1 : a.chunk;
  Engine engine(weights, pool, opt);

  std::vector<std::vector<float>> outputs;
  std::vector<TensorToWrite> to_write;
  for (const TensorView& tv : in->tensors()) {
    if (tv.name.rfind("tokens.", 0) != 0) continue;
    RG_CHECK(tv.dtype == DType::I32 && tv.shape.size() == 1 && tv.shape[0] > 0, a.tokens, ": tensor '",
             tv.name, "' must be I32 [T] with T > 0, got ", DTypeName(tv.dtype), " ", ShapeString(tv.shape));
    const int64_t T = tv.shape[0];
    Request r;
    r.prompt.resize(size_t(T));
    std::memcpy(r.prompt.data(), tv.data, size_t(T) * 4);
    r.max_tokens = 0;
    r.cache = false;
    r.prompt_logits = PromptLogits::kAll;
    outputs.emplace_back(static_cast<size_t>(T * V));
    float* out = outputs.back().data();
    r.on_prompt_logits = [out, V](int64_t first, int64_t n, const float* rows) {
      std::copy(rows, rows + n * V, out + first * V);
    };
    const Result res = engine.Run(std::move(r));
    RG_CHECK(res.reason != FinishReason::kError, a.tokens, ": tensor '", tv.name, "': ", res.error);
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
  AddModelFlags(cmd, &a->m, /*with_tokenizer=*/false);
  cmd->add_option("--tokens", a->tokens, "Input safetensors holding I32 tensors tokens.<i>")->required()->check(NonEmpty);
  cmd->add_option("--out", a->out, "Output safetensors for F32 logits.<i> [T, vocab]")->required()->check(NonEmpty);
  cmd->add_option("--mode", a->mode, "prefill: one parallel pass; decode: one token at a time")
      ->check(CLI::IsMember({"prefill", "decode"}));
  cmd->add_option("--chunk", a->chunk, "Rows per prefill pass")->check(CLI::Range(1, 1 << 16));
  cmd->callback([a] { RunForward(*a); });
}

}  // namespace rg::cli
