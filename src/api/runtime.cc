#include "api/runtime.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "generate/text_stream.h"
#include "model/weight_convert.h"
#include "tokenizer/encode_text.h"

namespace rg::api {

namespace {
constexpr size_t kRecentTokens = 1024;  // penalty history carried between generations
}

std::shared_ptr<Model> Model::Load(const std::string& dir, const ModelOptions& opt) {
  RG_CHECK(!dir.empty(), "model directory: an empty path");
  RG_CHECK(opt.threads >= 0 && opt.threads <= 1024, "threads must be in [0, 1024], got ", opt.threads);
  RG_CHECK(opt.parallel >= 1 && opt.parallel <= 256, "parallel must be in [1, 256], got ", opt.parallel);
  std::shared_ptr<Model> m(new Model);
  m->dir_ = dir;
  const unsigned hw = std::thread::hardware_concurrency();
  m->pool_ = std::make_unique<ThreadPool>(opt.threads > 0 ? opt.threads : int(hw ? hw : 1));
  LoadOptions lo;
  lo.pool = m->pool_.get();
  lo.copy_to_huge_pages = !opt.mmap;
  if (!opt.weights.empty()) {
    const std::optional<WeightFormat> f = ParseWeightFormat(opt.weights);
    RG_CHECK(f && *f != WeightFormat::F32, "weights: '", opt.weights, "' is not one of bf16, q8, q4");
    lo.matrix_format = f;
  }
  m->weights_ = Weights::Load(dir, lo);
  const std::string tok = !opt.tokenizer.empty() ? opt.tokenizer : dir + "/tokenizer.model";
  if (!opt.tokenizer.empty() || std::filesystem::exists(tok)) {
    m->tokenizer_ = Tokenizer::Load(tok);
    RG_CHECK(m->tokenizer_->vocab_size() <= m->config().vocab_size, tok, ": the tokenizer has ",
             m->tokenizer_->vocab_size(), " pieces but the model only ", m->config().vocab_size);
  }
  m->fp_ = FingerprintOf(*m->weights_);
  EngineOptions eo;
  eo.parallel = opt.parallel;
  eo.max_queue = 1 << 16;
  m->engine_ = std::make_unique<Engine>(m->weights_, *m->pool_, eo);
  return m;
}

Model::~Model() { engine_.reset(); }  // before the pool it runs on

std::vector<int32_t> Model::Tokenize(std::string_view text, bool bos) const {
  RG_CHECK(tokenizer_, dir_, ": the model has no tokenizer.model, so text cannot be used (give token ids)");
  std::vector<int32_t> ids;
  if (bos) ids.push_back(config().bos_id);
  for (int32_t id : EncodeText(*tokenizer_, text)) ids.push_back(id);
  return ids;
}

std::string Model::Detokenize(std::span<const int32_t> ids) const {
  RG_CHECK(tokenizer_, dir_, ": the model has no tokenizer.model, so ids cannot be turned into text");
  for (size_t i = 0; i < ids.size(); ++i)
    RG_CHECK(ids[i] >= 0 && ids[i] < tokenizer_->vocab_size(), "token id ", ids[i], " (item ", i,
             ") is outside the tokenizer's vocabulary [0, ", tokenizer_->vocab_size(), ")");
  return tokenizer_->Decode(std::vector<int>(ids.begin(), ids.end()));
}

void Model::CheckIds(std::span<const int32_t> ids, const char* what) const {
  for (size_t i = 0; i < ids.size(); ++i)
    RG_CHECK(ids[i] >= 0 && ids[i] < config().vocab_size, what, ": token id ", ids[i], " (item ", i,
             ") is outside the model's vocabulary [0, ", config().vocab_size, ")");
}

Sequence::Sequence(std::shared_ptr<Model> model)
    : model_(std::move(model)), state_(model_->config()), logits_(size_t(model_->config().vocab_size)) {}

std::unique_ptr<Sequence> Sequence::Copy() const {
  auto s = std::make_unique<Sequence>(model_);
  s->state_.CopyFrom(state_);
  s->logits_ = logits_;
  s->has_logits_ = has_logits_;
  s->recent_ = recent_;
  return s;
}

std::string Sequence::ToBytes() const {
  StateFileExtras ex;
  if (has_logits_) ex.logits = logits_;
  return SerializeState(state_, model_->config(), model_->fingerprint(), ex);
}

std::unique_ptr<Sequence> Sequence::FromBytes(std::shared_ptr<Model> model, std::string_view bytes,
                                              const std::string& name) {
  auto s = std::make_unique<Sequence>(model);
  const StateFileExtras ex = ParseState(bytes, name, model->config(), model->fingerprint(), &s->state_);
  if (!ex.logits.empty()) {
    s->logits_ = ex.logits;
    s->has_logits_ = true;
  }
  return s;
}

void Sequence::Save(const std::string& path) const {
  StateFileExtras ex;
  if (has_logits_) ex.logits = logits_;
  SaveState(path, state_, model_->config(), model_->fingerprint(), ex);
}

std::unique_ptr<Sequence> Sequence::Load(std::shared_ptr<Model> model, const std::string& path) {
  return FromBytes(model, ReadStateFileBytes(path, model->config(), model->fingerprint()), path);
}

Result Sequence::RunRequest(Request r, const std::atomic<bool>* cancel) {
  r.state = &state_;
  r.cache = false;
  r.final_logits = logits_.data();
  const Result res = model_->engine().Run(std::move(r), cancel);
  RG_CHECK(res.reason != FinishReason::kError, res.error);
  // Tokens fed before a cancellation are in the state and its logits follow
  // them; only a cancellation before anything ran leaves them as they were.
  if (state_.pos > 0) has_logits_ = true;
  return res;
}

void Sequence::Remember(std::span<const int32_t> ids) {
  recent_.insert(recent_.end(), ids.begin(), ids.end());
  while (recent_.size() > kRecentTokens) recent_.pop_front();
}

void Sequence::Eval(std::span<const int32_t> ids, bool all_rows, float* out, const std::atomic<bool>* cancel) {
  RG_CHECK(!ids.empty(), "eval: no tokens");
  model_->CheckIds(ids, "eval");
  const int64_t V = model_->config().vocab_size;
  Request r;
  r.prompt.assign(ids.begin(), ids.end());
  r.max_tokens = 0;
  r.prompt_logits = all_rows ? PromptLogits::kAll : PromptLogits::kNone;
  if (all_rows && out)
    r.on_prompt_logits = [out, V](int64_t first, int64_t n, const float* rows) {
      std::copy(rows, rows + n * V, out + first * V);
    };
  const Result res = RunRequest(std::move(r), cancel);
  RG_CHECK(res.reason != FinishReason::kCancelled, "eval: cancelled");
  Remember(ids);
  if (out && !all_rows) std::copy(logits_.begin(), logits_.end(), out);
}

std::vector<double> Sequence::Score(std::span<const int32_t> ids, const std::atomic<bool>* cancel) {
  RG_CHECK(!ids.empty(), "score: no tokens");
  model_->CheckIds(ids, "score");
  std::vector<double> out(ids.size(), std::numeric_limits<double>::quiet_NaN());
  const bool from_logits = has_logits_;
  Request r;
  r.prompt.assign(ids.begin(), ids.end());
  r.max_tokens = 0;
  r.prompt_logprobs = 0;
  r.prompt_logprobs_from = from_logits ? 0 : 1;
  r.initial_logits = from_logits ? logits_.data() : nullptr;
  r.on_prompt_logprobs = [&](std::vector<TokenLogprob>&& lps) {
    const size_t first = from_logits ? 0 : 1;
    for (size_t i = 0; i < lps.size() && first + i < out.size(); ++i) out[first + i] = lps[i].logprob;
  };
  const Result res = RunRequest(std::move(r), cancel);
  RG_CHECK(res.reason != FinishReason::kCancelled, "score: cancelled");
  Remember(ids);
  return out;
}

Generated Sequence::Generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                             const std::function<bool(int32_t, std::string_view)>& on_token,
                             const std::atomic<bool>* cancel) {
  model_->CheckIds(prompt, "prompt");
  RG_CHECK(!prompt.empty() || has_logits_, "generate: an empty prompt and an empty state: nothing to continue from");
  RG_CHECK(opt.stop.empty() || model_->tokenizer(), "stop strings need a tokenizer");
  Generated g;
  std::unique_ptr<TextStream> text;
  if (model_->tokenizer()) text = std::make_unique<TextStream>(*model_->tokenizer(), opt.stop);
  Request r;
  r.prompt.assign(prompt.begin(), prompt.end());
  r.history.assign(recent_.begin(), recent_.end());
  r.initial_logits = prompt.empty() ? logits_.data() : nullptr;
  r.sampling = opt.sampling;
  r.max_tokens = opt.max_tokens;
  r.ignore_eos = opt.ignore_eos;
  r.stop_ids = opt.stop_ids;
  r.on_token = [&](int32_t id, const TokenLogprob*) {
    g.ids.push_back(id);
    bool stopped = false;
    std::string piece;
    if (text) piece = text->Push(id, &stopped);
    g.text += piece;
    const bool go_on = on_token ? on_token(id, piece) : true;
    return go_on && !stopped;
  };
  g.result = RunRequest(std::move(r), cancel);
  if (text) {
    const std::string rest = text->Finish();
    g.text += rest;
    if (!rest.empty() && on_token) on_token(-1, rest);  // the held-back tail; -1: no new token
  }
  Remember(prompt);
  Remember(g.ids);
  return g;
}

}  // namespace rg::api
