// rgemma generate: continue a prompt, streaming the text as it is produced.
//   rgemma generate -m DIR -p "text" [-n 128] [sampling flags] [--stop STR]...
//   contract: rgemma generate --model DIR --prompt-ids 2,17,5 --max-tokens N
//             --temperature 0 --ignore-eos --print-ids
// Timings go to stderr; stdout holds only the generated text (or ids).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/precision_flag.h"
#include "cli/model_files.h"
#include "cli/sampling_flags.h"
#include "core/error.h"
#include "generate/generator.h"
#include "generate/text_stream.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt, prompt_file, prompt_ids, tokenizer, precision = "exact";
  std::vector<std::string> stop;
  int64_t max_tokens = 128;
  int64_t max_prompt_tokens = 1 << 20;
  size_t max_prompt_bytes = 64u << 20;
  bool ignore_eos = false, print_ids = false, no_bos = false, quiet = false;
  int threads = 0;
  SamplingParams sampling;
};

// The prompt text of -p / --prompt-file, checked before any model is loaded.
std::string PromptText(const GenerateArgs& a) {
  const int given = int(!a.prompt.empty()) + int(!a.prompt_file.empty()) + int(!a.prompt_ids.empty());
  RG_CHECK(given == 1, "give exactly one of -p/--prompt, --prompt-file, --prompt-ids (got ", given, ")");
  if (!a.prompt_ids.empty()) return "";
  const std::string text =
      a.prompt_file.empty() ? a.prompt : ReadTextFile(a.prompt_file, a.max_prompt_bytes, "prompt file");
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
    for (int id : tok->Encode(text)) ids.push_back(id);
  }
  RG_CHECK(!ids.empty(), "the prompt is empty (nothing to continue from)");
  RG_CHECK(int64_t(ids.size()) <= a.max_prompt_tokens, "the prompt has ", ids.size(),
           " tokens, more than --max-prompt-tokens ", a.max_prompt_tokens);
  for (size_t i = 0; i < ids.size(); ++i)
    RG_CHECK(ids[i] >= 0 && ids[i] < c.vocab_size, "--prompt-ids: token id ", ids[i], " (item ", i,
             ") is outside the model's vocabulary [0, ", c.vocab_size, ")");
  return ids;
}

void RunGenerate(GenerateArgs a) {
  a.sampling.Validate();
  for (const std::string& s : a.stop) RG_CHECK(IsValidUtf8(s), "--stop: invalid UTF-8");
  if (!a.prompt_ids.empty()) ParseIdList(a.prompt_ids, "--prompt-ids");  // syntax errors before loading
  const std::string prompt_text = PromptText(a);
  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, /*quiet=*/true, /*show_progress=*/!a.quiet);
  const Config& c = weights->config;
  const bool need_text = !a.print_ids || a.prompt_ids.empty();
  auto tok = LoadTokenizerFor(a.model, a.tokenizer, /*required=*/need_text);
  RG_CHECK(!tok || tok->vocab_size() <= c.vocab_size, "tokenizer has ", tok ? tok->vocab_size() : 0,
           " pieces but the model only ", c.vocab_size);
  RG_CHECK(a.stop.empty() || tok, "--stop needs a tokenizer");
  const std::vector<int32_t> prompt = PromptIds(a, prompt_text, tok.get(), c);

  Session session(weights, pool, kDefaultPrefillChunk, KernelOptionsFor(a.precision));
  Sampler sampler(a.sampling, int(c.vocab_size));
  StopConditions stop;
  stop.max_tokens = a.max_tokens;
  stop.ignore_eos = a.ignore_eos;
  std::unique_ptr<TextStream> text;
  if (!a.print_ids) text = std::make_unique<TextStream>(*tok, a.stop);

  size_t printed = 0;
  auto on_token = [&](int32_t id) {
    if (a.print_ids) {
      std::printf(printed++ ? " %d" : "%d", id);
      return true;
    }
    bool stopped = false;
    const std::string piece = text->Push(id, &stopped);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return !stopped;
  };
  GenerationStats st;
  const FinishReason reason = GenerateTokens(session, sampler, prompt, stop, on_token, &st);
  if (text) {
    const std::string rest = text->Finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::printf("\n");
  std::fflush(stdout);
  const size_t rss = PeakRssBytes();
  if (!a.quiet)
    std::fprintf(stderr,
                 "[stats] prompt %lld tok, prefill %.1f tok/s | generated %lld tok, decode %.2f tok/s | "
                 "peak RSS %.1f MiB (%zu bytes) | stop: %s\n",
                 (long long)st.prompt_tokens, double(st.prompt_tokens) / st.prefill_seconds,
                 (long long)st.generated_tokens,
                 st.generated_tokens > 1 ? double(st.generated_tokens - 1) / st.decode_seconds : 0.0,
                 double(rss) / (1 << 20), rss, FinishReasonName(reason));
}

}  // namespace

void RegisterGenerate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text");
  cmd->add_option("--model,-m", a->model, "Model directory")->required();
  cmd->add_option("--prompt,-p", a->prompt, "Prompt text (BOS is added unless --no-bos)");
  cmd->add_option("--prompt-file,-f", a->prompt_file, "Read the prompt text from a file");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids (BOS included)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model (default: the model directory's)");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--stop", a->stop, "Stop when this text is generated (repeatable)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at end-of-sequence");
  cmd->add_flag("--print-ids", a->print_ids, "Print the generated ids on one line instead of text");
  cmd->add_flag("--no-bos", a->no_bos, "Do not prepend BOS to a text prompt");
  cmd->add_flag("--quiet,-q", a->quiet, "No timings on stderr");
  cmd->add_option("--max-prompt-tokens", a->max_prompt_tokens, "Refuse longer prompts")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--max-prompt-bytes", a->max_prompt_bytes, "Refuse larger prompt files")->capture_default_str();
  AddSamplingFlags(cmd, &a->sampling);
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  AddPrecisionFlag(cmd, &a->precision);
  cmd->callback([a] { RunGenerate(*a); });
}

}  // namespace rg::cli
