// rgemma generate: continue a prompt, streaming the text as it is produced.
//   rgemma generate -m DIR -p "text" [-n 128] [sampling flags] [--stop STR]...
//                   [--prompt-cache FILE] [-e] [-f FILE | -f -]
//   contract: rgemma generate --model DIR --prompt-ids 2,17,5 --max-tokens N
//             --temperature 0 --ignore-eos --print-ids
// Timings go to stderr; stdout holds only the generated text (or ids).
// One request to the engine (generate/engine.h) with one slot.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/escapes.h"
#include "cli/interrupt.h"
#include "cli/model_files.h"
#include "cli/sampling_flags.h"
#include "core/error.h"
#include "generate/engine.h"
#include "generate/text_stream.h"
#include "model/state_io.h"
#include "tokenizer/encode_text.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

struct GenerateArgs {
  ModelFlags m;
  std::string prompt, prompt_file, prompt_ids, prompt_cache;
  std::vector<std::string> stop;
  int64_t max_tokens = 128;
  int64_t max_prompt_tokens = 1 << 20;
  size_t max_prompt_bytes = 64u << 20;
  bool ignore_eos = false, print_ids = false, no_bos = false, quiet = false;
  bool escape = false;  // -e: backslash escapes in -p and --stop
  SamplingFlags sampling_flags;
  SamplingParams sampling;  // resolved from sampling_flags (the seed)
};

// The prompt text of -p / --prompt-file, checked before any model is loaded.
std::string PromptText(const GenerateArgs& a) {
  const int given = int(!a.prompt.empty()) + int(!a.prompt_file.empty()) + int(!a.prompt_ids.empty());
  RG_CHECK(given == 1, "give exactly one of -p/--prompt, --prompt-file, --prompt-ids (got ", given, ")");
  if (!a.prompt_ids.empty()) return "";
  const std::string text = !a.prompt_file.empty()
                               ? (a.prompt_file == "-" ? ReadStdinText(a.max_prompt_bytes, "prompt")
                                                       : ReadTextFile(a.prompt_file, a.max_prompt_bytes, "prompt file"))
                           : a.escape ? ProcessEscapes(a.prompt)
                                      : a.prompt;
  RG_CHECK(text.size() <= a.max_prompt_bytes, "--prompt: ", text.size(), " bytes, more than the limit of ",
           a.max_prompt_bytes, " (--max-prompt-bytes)");
  size_t bad = 0;
  RG_CHECK(IsValidUtf8(text, &bad), a.prompt_file.empty() ? "--prompt" : a.prompt_file,
           ": invalid UTF-8 at byte ", bad);
  return text;
}

std::vector<int32_t> PromptIds(const GenerateArgs& a, const std::string& text, const Tokenizer* tok,
                               const Config& c) {
  std::vector<int32_t> ids;
  if (!a.prompt_ids.empty()) {
    ids = ParseIdList(a.prompt_ids, "--prompt-ids");
  } else {
    if (!a.no_bos) ids.push_back(c.bos_id);
    for (int32_t id : EncodeText(*tok, text)) ids.push_back(id);
  }
  RG_CHECK(!ids.empty(), "the prompt is empty (nothing to continue from)");
  RG_CHECK(int64_t(ids.size()) <= a.max_prompt_tokens, "the prompt has ", ids.size(),
           " tokens, more than --max-prompt-tokens ", a.max_prompt_tokens);
  for (size_t i = 0; i < ids.size(); ++i)
    RG_CHECK(ids[i] >= 0 && ids[i] < c.vocab_size, "--prompt-ids: token id ", ids[i], " (item ", i,
             ") is outside the model's vocabulary [0, ", c.vocab_size, ")");
  return ids;
}

// --prompt-cache (llama.cpp's flag): a state file holding the state after a
// prompt, its tokens and its last logits. A new prompt that extends those
// tokens continues from it; the file is then rewritten for the new prompt.
struct PromptCache {
  std::string path;
  State state;
  std::vector<float> logits;  // [V] after the last prompt token
  int64_t reused = 0;         // prompt tokens taken from the file

  PromptCache(std::string p, const Weights& w) : path(std::move(p)), state(w.config) {}

  // Restores the file if its tokens are a prefix of `prompt` (all of it only
  // with logits). Anything else (no file, another prompt, another model, a
  // corrupt file) starts from an empty state; the file is replaced later.
  void Load(const std::vector<int32_t>& prompt, const Weights& w, const ModelFingerprint& fp, bool quiet) {
    if (!std::filesystem::exists(path)) return;
    const Config& c = w.config;
    try {
      const std::string bytes = ReadStateFileBytes(path, c, fp);
      const ParsedStateFile f = ParseStateFile(bytes, path, c, fp);
      const std::vector<int32_t>& t = f.extras.tokens;
      const bool prefix = !t.empty() && t.size() <= prompt.size() && std::equal(t.begin(), t.end(), prompt.begin());
      if (!prefix || (t.size() == prompt.size() && f.extras.logits.empty())) {
        if (!quiet) std::fprintf(stderr, "prompt cache %s: another prompt, not reused\n", path.c_str());
        return;
      }
      DecodeLayers(f.layers, path, c, f.pos, &state);
      logits = f.extras.logits;
      reused = int64_t(t.size());
    } catch (const Error& e) {
      state.Reset();
      if (!quiet) std::fprintf(stderr, "prompt cache not used: %s\n", e.what());
    }
  }

  void Save(const std::vector<int32_t>& prompt, const Config& c, const ModelFingerprint& fp) {
    StateFileExtras ex;
    ex.tokens = prompt;
    ex.logits = logits;
    SaveState(path, state, c, fp, ex);
  }
};

void RunGenerate(GenerateArgs a) {
  a.sampling = ResolveSampling(a.sampling_flags);
  for (std::string& s : a.stop) {
    RG_CHECK(IsValidUtf8(s), "--stop: invalid UTF-8");
    if (a.escape) s = ProcessEscapes(s);
  }
  if (!a.prompt_ids.empty()) ParseIdList(a.prompt_ids, "--prompt-ids");  // syntax errors before loading
  const std::string prompt_text = PromptText(a);
  std::optional<ThreadPool> pool;
  std::unique_ptr<Engine> engine;
  std::shared_ptr<const Weights> weights;
  std::unique_ptr<Tokenizer> tok;
  double load_seconds = 0;
  {
    BlockSigint block;  // compute threads never take Ctrl-C
    pool.emplace(ResolveThreads(a.m.threads));
    weights = LoadModel(a.m, *pool, a.quiet ? LoadNotes::kNone : LoadNotes::kProgress, &load_seconds);
    const bool need_text = !a.print_ids || a.prompt_ids.empty();
    tok = LoadTokenizerFor(a.m.model, a.m.tokenizer, /*required=*/need_text, ", or give token ids with --prompt-ids");
    EngineOptions opt;
    opt.kernels = a.m.kernels();
    opt.sample_vocab = SampleableVocab(weights->config, tok.get(), a.quiet);
    engine = std::make_unique<Engine>(weights, *pool, opt);
  }
  const Config& c = weights->config;
  RG_CHECK(a.stop.empty() || tok, "--stop needs a tokenizer");
  const std::vector<int32_t> prompt = PromptIds(a, prompt_text, tok.get(), c);

  std::unique_ptr<TextStream> text;
  if (!a.print_ids) text = std::make_unique<TextStream>(*tok, a.stop);
  size_t printed = 0;
  auto on_token = [&](int32_t id, const TokenLogprob*) {
    if (a.print_ids) {
      WriteStdout(StrCat(printed++ ? " " : "", id));
      return true;
    }
    bool stopped = false;
    WriteStdout(text->Push(id, &stopped));
    FlushStdout();
    return !stopped;
  };

  if (!a.quiet) NoteRandomSeed(a.sampling_flags, a.sampling);
  Request req;
  req.sampling = a.sampling;
  req.max_tokens = a.max_tokens;
  req.ignore_eos = a.ignore_eos;
  req.on_token = on_token;
  req.cache = false;
  SigintScope sigint;  // Ctrl-C ends the generation; the stats are still printed
  InterruptExitsOnSecond() = true;
  Result prefill, decode;
  if (a.prompt_cache.empty()) {
    req.prompt = prompt;
    decode = prefill = engine->Run(std::move(req), &InterruptFlag());
  } else {
    const ModelFingerprint fp = FingerprintOf(*weights);
    PromptCache pc(a.prompt_cache, *weights);
    pc.Load(prompt, *weights, fp, a.quiet);
    if (pc.reused < int64_t(prompt.size())) {  // run the rest of the prompt, keep its last logits
      Request p;
      p.prompt.assign(prompt.begin() + pc.reused, prompt.end());
      p.state = &pc.state;
      p.max_tokens = 0;
      p.prompt_logits = PromptLogits::kLast;
      p.on_prompt_logits = [&](int64_t, int64_t, const float* row) { pc.logits.assign(row, row + c.vocab_size); };
      prefill = engine->Run(std::move(p), &InterruptFlag());
      RG_CHECK(prefill.reason != FinishReason::kError, "generate: ", prefill.error);
      if (prefill.reason != FinishReason::kCancelled) pc.Save(prompt, c, fp);
    }
    prefill.prompt_tokens = int64_t(prompt.size());
    prefill.cached_tokens = pc.reused;
    if (prefill.reason != FinishReason::kCancelled) {
      req.state = &pc.state;
      req.initial_logits = pc.logits.data();
      req.history = prompt;
      decode = engine->Run(std::move(req), &InterruptFlag());
    } else {
      decode = prefill;
    }
  }
  RG_CHECK(decode.reason != FinishReason::kError, "generate: ", decode.error);
  if (text) WriteStdout(text->Finish());
  WriteStdout("\n");
  FlushStdout();
  const size_t rss = PeakRssBytes();
  const bool interrupted = decode.reason == FinishReason::kCancelled;
  const int64_t run = prefill.prompt_tokens - prefill.cached_tokens;
  if (!a.quiet)
    std::fprintf(stderr,
                 "[stats] prompt %lld tok%s, prefill %.1f tok/s | generated %lld tok, decode %.2f tok/s | "
                 "peak RSS %.1f MiB (%zu bytes) | stop: %s | load %.2f s\n",
                 (long long)prefill.prompt_tokens,
                 prefill.cached_tokens ? StrCat(" (", prefill.cached_tokens, " from the prompt cache)").c_str() : "",
                 prefill.prefill_seconds > 0 ? double(run) / prefill.prefill_seconds : 0.0,
                 (long long)decode.generated_tokens,
                 decode.generated_tokens > 1 && decode.decode_seconds > 0
                     ? double(decode.generated_tokens - 1) / decode.decode_seconds
                     : 0.0,
                 double(rss) / (1 << 20), rss, interrupted ? "interrupted" : FinishReasonName(decode.reason),
                 load_seconds);
  if (interrupted) throw ExitCode(130);
}

}  // namespace

void RegisterGenerate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text");
  AddModelFlags(cmd, &a->m);
  cmd->add_option("--prompt,-p", a->prompt, "Prompt text (BOS is added unless --no-bos)");
  cmd->add_option("--prompt-file,-f", a->prompt_file, "Read the prompt text from a file (- reads stdin)");
  cmd->add_flag("--escape,-e", a->escape, "Process escapes (\\n, \\t, \\\\, \\\") in -p and --stop");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids (BOS included)");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--stop", a->stop, "Stop when this text is generated (repeatable)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at end-of-sequence");
  cmd->add_flag("--print-ids", a->print_ids, "Print the generated ids on one line instead of text");
  cmd->add_flag("--no-bos", a->no_bos, "Do not prepend BOS to a text prompt");
  cmd->add_flag("--quiet,-q", a->quiet, "No timings on stderr");
  cmd->add_option("--prompt-cache", a->prompt_cache,
                  "State file: reuse the state after a prompt this one extends, then save it for this prompt");
  cmd->add_option("--max-prompt-tokens", a->max_prompt_tokens, "Refuse longer prompts")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--max-prompt-bytes", a->max_prompt_bytes, "Refuse larger prompt files")->capture_default_str();
  AddSamplingFlags(cmd, &a->sampling_flags);
  cmd->callback([a] { RunGenerate(*a); });
}

}  // namespace rg::cli
