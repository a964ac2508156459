// rgemma perplexity: perplexity of a text of any length, in constant memory.
//   rgemma perplexity -m DIR -f FILE.txt [--ctx N] [--json]
//   rgemma perplexity -m DIR --ids 2,17,5,...          (models without a tokenizer)
// The text is read and tokenized in blocks that end at line breaks (Gemma's
// newline pieces never merge with what follows, so this equals tokenizing
// the whole text, except inside lines longer than --block-bytes), prefixed
// with BOS, and run as ONE sequence: RecurrentGemma's state has a fixed size,
// so memory does not grow with the text. Every token after BOS is scored:
//   perplexity = exp(-(1/N) sum_t log p(token_t | tokens_<t)).
// --ctx N instead restarts from an empty state (and BOS) every N tokens, like
// fixed-context evaluations of other models.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <span>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "core/error.h"
#include "generate/engine.h"
#include "tokenizer/encode_text.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

struct PerplexityArgs {
  ModelFlags m;
  std::string file, ids;
  int64_t ctx = 0;
  size_t block_bytes = 1 << 16;
  int64_t max_tokens = 0;
  bool json_out = false, quiet = false;
};

// Reads a text file in blocks that end after a run of '\n' (or at a UTF-8
// character boundary when a line exceeds the block size).
class BlockReader {
 public:
  BlockReader(const std::string& path, size_t block) : in_(path, std::ios::binary), block_(block) {
    RG_CHECK(in_, path, ": cannot open");
  }
  bool Next(std::string* out) {
    out->clear();
    for (;;) {
      if (!eof_ && buf_.size() < 2 * block_) {
        std::string chunk(block_, '\0');
        in_.read(chunk.data(), std::streamsize(chunk.size()));
        chunk.resize(size_t(in_.gcount()));
        if (chunk.empty()) eof_ = true;
        buf_ += chunk;
        continue;
      }
      if (eof_) {
        if (buf_.empty()) return false;
        out->swap(buf_);
        buf_.clear();
        return true;
      }
      // Cut just after the first run of '\n' that ends at or after block_.
      size_t cut = 0;
      for (size_t i = block_ - 1; i + 1 < buf_.size(); ++i)
        if (buf_[i] == '\n' && buf_[i + 1] != '\n') {
          cut = i + 1;
          break;
        }
      if (cut == 0) {
        if (buf_.size() < 4 * block_) {  // read more and look again
          std::string chunk(block_, '\0');
          in_.read(chunk.data(), std::streamsize(chunk.size()));
          chunk.resize(size_t(in_.gcount()));
          if (chunk.empty()) eof_ = true;
          buf_ += chunk;
          continue;
        }
        cut = 2 * block_;  // a very long line: cut at a character boundary
        while (cut > 0 && (static_cast<unsigned char>(buf_[cut]) & 0xC0) == 0x80) --cut;
      }
      out->assign(buf_, 0, cut);
      buf_.erase(0, cut);
      return true;
    }
  }

 private:
  std::ifstream in_;
  size_t block_;
  std::string buf_;
  bool eof_ = false;
};

// Scores a token stream as one sequence (or restarts every --ctx tokens):
// each run of tokens is one engine request that continues the caller's
// state from the logits the previous run ended with.
class Scorer {
 public:
  Scorer(Engine& engine, const Config& c) : engine_(engine), c_(c), state_(c), prev_(size_t(c.vocab_size)) {}

  // Feeds t (the first token of a context is BOS, not scored); scores every
  // token that has logits before it.
  void Run(std::span<const int32_t> t) {
    Request r;
    r.prompt.assign(t.begin(), t.end());
    r.state = &state_;
    r.max_tokens = 0;
    r.prompt_logprobs = 0;
    r.prompt_logprobs_from = have_prev_ ? 0 : 1;
    r.initial_logits = have_prev_ ? prev_.data() : nullptr;
    r.prompt_logits = PromptLogits::kLast;
    r.on_prompt_logits = [&](int64_t, int64_t, const float* row) { std::copy(row, row + c_.vocab_size, prev_.begin()); };
    r.on_prompt_logprobs = [&](std::vector<TokenLogprob>&& lps) {
      for (const TokenLogprob& lp : lps) nll_ -= double(lp.logprob);
      scored_ += int64_t(lps.size());
    };
    const Result res = engine_.Run(std::move(r));
    RG_CHECK(res.reason != FinishReason::kError, "perplexity: ", res.error);
    have_prev_ = true;
    in_ctx_ += int64_t(t.size());
    total_ += int64_t(t.size());
  }
  // A new context: empty state, then BOS (not scored).
  void Restart() {
    state_.Reset();
    have_prev_ = false;
    in_ctx_ = 0;
    const int32_t bos = c_.bos_id;
    Run(std::span<const int32_t>(&bos, 1));
  }
  // True once a token was fed: the next run's first token is scored too.
  bool continuing() const { return have_prev_; }

  int64_t in_ctx() const { return in_ctx_; }
  int64_t scored() const { return scored_; }
  int64_t total() const { return total_; }
  double nll() const { return nll_; }

 private:
  Engine& engine_;
  const Config& c_;
  State state_;
  std::vector<float> prev_;  // [V] the logits that predict the next token
  bool have_prev_ = false;
  int64_t in_ctx_ = 0, scored_ = 0, total_ = 0;
  double nll_ = 0;
};

void RunPerplexity(const PerplexityArgs& a) {
  RG_CHECK(a.file.empty() != a.ids.empty(), "give exactly one of -f/--file and --ids");
  RG_CHECK(a.ctx == 0 || a.ctx >= 2, "--ctx must be 0 (one sequence) or at least 2, got ", a.ctx);
  RG_CHECK(a.file.empty() || !std::filesystem::is_directory(a.file), a.file, ": is a directory (give a text file)");
  ThreadPool pool(ResolveThreads(a.m.threads));
  auto weights = LoadModel(a.m, pool, a.quiet ? LoadNotes::kNone : LoadNotes::kProgress);
  const Config& c = weights->config;
  std::unique_ptr<Tokenizer> tok;
  if (!a.file.empty()) {
    tok = LoadTokenizerFor(a.m.model, a.m.tokenizer, /*required=*/true, ", or give token ids with --ids");
  }

  constexpr int64_t kRun = 512;  // tokens per request; the engine runs them 64 rows at a time
  EngineOptions opt;
  opt.kernels = a.m.kernels();
  opt.prefill_chunk = opt.logits_chunk = 64;
  Engine engine(weights, pool, opt);
  Scorer sc(engine, c);
  const auto t0 = std::chrono::steady_clock::now();

  // Feeds pending tokens (BOS-prefixed where a context starts) in runs; false
  // once --max-tokens tokens are scored.
  std::vector<int32_t> pending;
  auto flush = [&](bool final) {
    size_t i = 0;
    bool go = true;
    while (go && (pending.size() - i >= size_t(kRun) || (final && i < pending.size()))) {
      int64_t m = std::min<int64_t>(kRun, int64_t(pending.size() - i));
      if (a.ctx > 0) m = std::min<int64_t>(m, a.ctx - sc.in_ctx());
      if (a.max_tokens > 0) m = std::min<int64_t>(m, a.max_tokens - sc.scored() + (sc.continuing() ? 0 : 1));
      sc.Run(std::span<const int32_t>(pending.data() + i, size_t(m)));
      i += size_t(m);
      if (a.max_tokens > 0 && sc.scored() >= a.max_tokens) go = false;
      else if (a.ctx > 0 && sc.in_ctx() >= a.ctx) sc.Restart();
    }
    pending.erase(pending.begin(), pending.begin() + long(i));
    if (!go) pending.clear();
    return go;
  };

  if (!a.ids.empty()) {
    pending = ParseIdList(a.ids, "--ids");
    for (int32_t id : pending)
      RG_CHECK(id < c.vocab_size, "--ids: token id ", id, " is outside the vocabulary [0, ", c.vocab_size, ")");
    RG_CHECK(pending.size() >= 2, "--ids: need at least 2 tokens");
    flush(true);
  } else {
    pending.push_back(c.bos_id);
    BlockReader reader(a.file, a.block_bytes);
    std::string block;
    size_t offset = 0;
    bool go = true;
    while (go && reader.Next(&block)) {
      size_t bad = 0;
      RG_CHECK(IsValidUtf8(block, &bad), a.file, ": invalid UTF-8 at byte ", offset + bad);
      offset += block.size();
      for (int32_t id : EncodeText(*tok, block)) pending.push_back(id);
      go = flush(false);
      if (!a.quiet)
        std::fprintf(stderr, "\rperplexity: %lld tokens, ppl %.4f   ", (long long)sc.total(),
                     sc.scored() ? std::exp(sc.nll() / double(sc.scored())) : 0.0);
    }
    if (go) flush(true);
    if (!a.quiet) std::fprintf(stderr, "\n");
  }
  RG_CHECK(sc.scored() > 0, a.file.empty() ? "--ids" : a.file,
           ": nothing to score (the text has fewer than 2 tokens after BOS)");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ppl = std::exp(sc.nll() / double(sc.scored()));
  if (a.json_out) {
    nlohmann::json r = {{"perplexity", ppl}, {"nll_per_token", sc.nll() / double(sc.scored())},
                        {"tokens_scored", sc.scored()}, {"tokens", sc.total()}, {"seconds", secs}, {"ctx", a.ctx}};
    WriteStdout(r.dump(2) + "\n");
  } else {
    char line[256];
    std::snprintf(line, sizeof line, "perplexity %.6f | nll/token %.6f | %lld tokens scored | %.1f tok/s\n", ppl,
                  sc.nll() / double(sc.scored()), (long long)sc.scored(), double(sc.total()) / secs);
    WriteStdout(line);
  }
  FlushStdout();
}

}  // namespace

void RegisterPerplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a text file of any length (constant memory)");
  AddModelFlags(cmd, &a->m);
  cmd->add_option("--file,-f", a->file, "Text file");
  cmd->add_option("--ids", a->ids, "Comma-separated token ids instead of a file (BOS included)");
  cmd->add_option("--ctx", a->ctx, "Restart from an empty state every N tokens (0 = one sequence)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "Score exactly the first N tokens (0 = the whole text)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_option("--block-bytes", a->block_bytes, "Text read and tokenized per block")
      ->check(CLI::Range(size_t(256), size_t(1) << 30))->capture_default_str();
  cmd->add_flag("--json", a->json_out, "Print the result as JSON");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
  cmd->callback([a] { RunPerplexity(*a); });
}

}  // namespace rg::cli
