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
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "core/error.h"
#include "generate/session.h"
#include "tokenizer/utf8.h"

namespace rg::cli {
namespace {

struct PerplexityArgs {
  std::string model, tokenizer, file, ids;
  int64_t ctx = 0;
  size_t block_bytes = 1 << 16;
  int64_t max_tokens = 0;
  bool json_out = false, quiet = false;
  int threads = 0;
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

void RunPerplexity(const PerplexityArgs& a) {
  RG_CHECK(a.file.empty() != a.ids.empty(), "give exactly one of -f/--file and --ids");
  RG_CHECK(a.ctx == 0 || a.ctx >= 2, "--ctx must be 0 (one sequence) or at least 2, got ", a.ctx);
  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, /*quiet=*/true, /*show_progress=*/!a.quiet);
  const Config& c = weights->config;
  const int64_t V = c.vocab_size;
  std::unique_ptr<Tokenizer> tok;
  if (!a.file.empty()) tok = LoadTokenizerFor(a.model, a.tokenizer, /*required=*/true);

  constexpr int64_t kChunk = 64;
  Session session(weights, pool, kChunk);
  std::vector<float> rows(size_t(kChunk * V));
  std::vector<float> prev(static_cast<size_t>(V));  // logits that predict the next token
  bool have_prev = false;
  int64_t in_ctx = 0;  // tokens in the current context (for --ctx)
  double nll = 0;
  int64_t scored = 0, total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto log_softmax_at = [&](const float* row, int32_t id) {
    double mx = -INFINITY;
    for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - mx);
    return double(row[id]) - mx - std::log(sum);
  };

  // Feeds tokens (already BOS-prefixed where a context starts).
  std::vector<int32_t> pending;
  auto flush = [&](bool final) {
    size_t i = 0;
    while (pending.size() - i >= size_t(kChunk) || (final && i < pending.size())) {
      int64_t m = std::min<int64_t>(kChunk, int64_t(pending.size() - i));
      if (a.ctx > 0) m = std::min<int64_t>(m, a.ctx - in_ctx);
      const int32_t* t = pending.data() + i;
      if (have_prev) {
        nll -= log_softmax_at(prev.data(), t[0]);
        ++scored;
      }
      session.ForwardAll(std::span<const int32_t>(t, size_t(m)), rows.data());
      for (int64_t k = 0; k + 1 < m; ++k) {
        nll -= log_softmax_at(rows.data() + k * V, t[k + 1]);
        ++scored;
      }
      std::copy(rows.data() + (m - 1) * V, rows.data() + m * V, prev.begin());
      have_prev = true;
      in_ctx += m;
      total += m;
      i += size_t(m);
      if (a.ctx > 0 && in_ctx >= a.ctx) {  // next context: empty state, BOS (not scored)
        session.Reset();
        in_ctx = 0;
        const int32_t bos = c.bos_id;
        session.ForwardAll(std::span<const int32_t>(&bos, 1), rows.data());
        std::copy(rows.data(), rows.data() + V, prev.begin());
        in_ctx = 1;
      }
      if (a.max_tokens > 0 && total >= a.max_tokens) {
        pending.clear();
        return false;
      }
    }
    pending.erase(pending.begin(), pending.begin() + long(i));
    return true;
  };

  if (!a.ids.empty()) {
    pending = ParseIdList(a.ids, "--ids");
    for (int32_t id : pending)
      RG_CHECK(id < V, "--ids: token id ", id, " is outside the vocabulary [0, ", V, ")");
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
      for (int id : tok->Encode(block)) pending.push_back(id);
      go = flush(false);
      if (!a.quiet) std::fprintf(stderr, "\rperplexity: %lld tokens, ppl %.4f   ", (long long)total, scored ? std::exp(nll / double(scored)) : 0.0);
    }
    if (go) flush(true);
    if (!a.quiet) std::fprintf(stderr, "\n");
  }
  RG_CHECK(scored > 0, "nothing to score (the text has fewer than 2 tokens)");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ppl = std::exp(nll / double(scored));
  if (a.json_out) {
    nlohmann::json r = {{"perplexity", ppl}, {"nll_per_token", nll / double(scored)}, {"tokens_scored", scored},
                        {"tokens", total}, {"seconds", secs}, {"ctx", a.ctx}};
    std::printf("%s\n", r.dump(2).c_str());
  } else {
    std::printf("perplexity %.6f | nll/token %.6f | %lld tokens scored | %.1f tok/s\n", ppl, nll / double(scored),
                (long long)scored, double(total) / secs);
  }
}

}  // namespace

void RegisterPerplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a text file of any length (constant memory)");
  cmd->add_option("--model,-m", a->model, "Model directory")->required();
  cmd->add_option("--file,-f", a->file, "Text file");
  cmd->add_option("--ids", a->ids, "Comma-separated token ids instead of a file (BOS included)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model (default: the model directory's)");
  cmd->add_option("--ctx", a->ctx, "Restart from an empty state every N tokens (0 = one sequence)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "Stop after N tokens (0 = the whole text)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_option("--block-bytes", a->block_bytes, "Text read and tokenized per block")
      ->check(CLI::Range(size_t(256), size_t(1) << 30))->capture_default_str();
  cmd->add_flag("--json", a->json_out, "Print the result as JSON");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
  cmd->add_option("--threads,-t", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->callback([a] { RunPerplexity(*a); });
}

}  // namespace rg::cli
