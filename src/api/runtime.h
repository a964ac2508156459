// The library interface the C API (include/rgemma/rgemma.h) and the Python
// package are built on: a loaded model with its generation engine, and
// sequences (a State plus the logits after its last token) that are fed,
// scored and continued through that one engine — the same engine the CLI and
// the server drive. A front end only translates calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/engine.h"
#include "model/state_io.h"
#include "tokenizer/tokenizer.h"

namespace rg::api {

struct ModelOptions {
  int threads = 0;        // 0 = all cores
  std::string weights;    // "" = as stored; "bf16", "q8", "q4" = converted at load
  bool mmap = false;      // use the weights in place from the file mapping
  std::string tokenizer;  // "" = <dir>/tokenizer.model if present
  int parallel = 4;       // sequences the engine runs together
};

class Model {
 public:
  // Throws rg::Error (one line naming the file / field) on anything wrong.
  static std::shared_ptr<Model> Load(const std::string& dir, const ModelOptions& opt);
  ~Model();

  const std::string& dir() const { return dir_; }
  const Weights& weights() const { return *weights_; }
  const Config& config() const { return weights_->config; }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }  // null: ids only
  const ModelFingerprint& fingerprint() const { return fp_; }
  Engine& engine() { return *engine_; }
  ThreadPool& pool() { return *pool_; }

  // EncodeText (tokenizer/encode_text.h), BOS first if bos. Throws rg::Error
  // without a tokenizer or for invalid UTF-8.
  std::vector<int32_t> Tokenize(std::string_view text, bool bos) const;
  std::string Detokenize(std::span<const int32_t> ids) const;
  // Throws rg::Error naming `what` for ids outside the vocabulary.
  void CheckIds(std::span<const int32_t> ids, const char* what) const;

 private:
  Model() = default;
  std::string dir_;
  std::unique_ptr<ThreadPool> pool_;
  std::shared_ptr<const Weights> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ModelFingerprint fp_;
  std::unique_ptr<Engine> engine_;
};

struct GenerateOptions {
  int64_t max_tokens = 128;
  bool ignore_eos = false;
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop;  // stop strings (need a tokenizer); not part of the returned text
  SamplingParams sampling;
};

struct Generated {
  std::vector<int32_t> ids;  // reported tokens
  std::string text;          // their text ("" without a tokenizer), cut at a stop string
  Result result;
};

// One sequence of a model: constant size whatever its length. Not safe for
// concurrent calls on the same Sequence; different Sequences of one Model may
// run from different threads at once (the engine batches them).
class Sequence {
 public:
  explicit Sequence(std::shared_ptr<Model> model);
  std::unique_ptr<Sequence> Copy() const;  // an explicit copy (a few MB for 2B)

  int64_t pos() const { return state_.pos; }
  const float* logits() const { return has_logits_ ? logits_.data() : nullptr; }  // [V] after the last token
  Model& model() const { return *model_; }

  // The state file format (model/state_io.h), with the logits.
  std::string ToBytes() const;
  static std::unique_ptr<Sequence> FromBytes(std::shared_ptr<Model> model, std::string_view bytes,
                                             const std::string& name);
  void Save(const std::string& path) const;
  static std::unique_ptr<Sequence> Load(std::shared_ptr<Model> model, const std::string& path);

  // Feeds ids. out: null, [n, V] (all_rows) or [V] (the last row).
  void Eval(std::span<const int32_t> ids, bool all_rows, float* out, const std::atomic<bool>* cancel = nullptr);
  // log p(ids[i] | state, ids[0..i)) for each i; NaN for ids[0] of an empty
  // sequence (nothing predicts it). The state then holds ids.
  std::vector<double> Score(std::span<const int32_t> ids, const std::atomic<bool>* cancel = nullptr);
  // Feeds prompt (may be empty: continue from logits()) and generates. on_token
  // gets each id with its UTF-8-safe text piece and may return false to stop.
  // Afterwards the state holds every reported token and logits() follows the
  // last. Throws rg::Error for invalid arguments or a failed generation;
  // result.reason is kCancelled when *cancel was set.
  Generated Generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                     const std::function<bool(int32_t id, std::string_view piece)>& on_token = {},
                     const std::atomic<bool>* cancel = nullptr);

 private:
  Result RunRequest(Request r, const std::atomic<bool>* cancel);
  void Remember(std::span<const int32_t> ids);  // the penalty history of later generations

  std::shared_ptr<Model> model_;
  State state_;
  std::vector<float> logits_;  // [V]
  bool has_logits_ = false;
  std::deque<int32_t> recent_;  // the last fed tokens, oldest first
};

}  // namespace rg::api
