// include/rgemma/rgemma.h over api/runtime.h: handles, status codes and the
// thread-local error message; every exception stops here.
#include "rgemma/rgemma.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "api/runtime.h"
#include "core/error.h"
#include "sampling/sampler.h"

struct rg_model {
  std::shared_ptr<rg::api::Model> m;
};
struct rg_state {
  std::unique_ptr<rg::api::Sequence> s;
};
struct rg_sampler {
  std::unique_ptr<rg::Sampler> s;
  int32_t vocab;
};

namespace {

thread_local std::string g_error;

// Runs fn, turning exceptions into a status and the message.
template <class Fn>
rg_status Guard(Fn&& fn) {
  try {
    fn();
    return RG_OK;
  } catch (const std::bad_alloc&) {
    g_error = "out of memory";
    return RG_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_error = e.what();
    return RG_ERR_INVALID_ARGUMENT;
  } catch (...) {
    g_error = "unknown error";
    return RG_ERR_INTERNAL;
  }
}

rg_status Fail(rg_status st, const std::string& msg) {
  g_error = msg;
  return st;
}

rg::SamplingParams ToParams(const rg_sampler_params& p) {
  rg::SamplingParams s;
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.repeat_penalty = p.repeat_penalty;
  s.repeat_last_n = p.repeat_last_n;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.seed = p.seed;
  return s;
}

#define RG_NEED(ptr, name) \
  if (!(ptr)) return Fail(RG_ERR_INVALID_ARGUMENT, std::string(__func__) + ": " name " is NULL")

}  // namespace

extern "C" {

const char* rg_last_error(void) { return g_error.c_str(); }

const char* rg_version(void) {
#ifndef RG_VERSION_STRING
#define RG_VERSION_STRING "rgemma"
#endif
  return RG_VERSION_STRING;
}

void rg_free(void* p) { std::free(p); }

rg_model_params rg_model_default_params(void) { return rg_model_params{0, nullptr, 0, nullptr, 0}; }

rg_status rg_model_load(const char* dir, const rg_model_params* params, rg_model** out) {
  RG_NEED(dir, "dir");
  RG_NEED(out, "out");
  *out = nullptr;
  const rg_model_params p = params ? *params : rg_model_default_params();
  const rg_status st = Guard([&] {
    rg::api::ModelOptions o;
    o.threads = p.threads;
    if (p.weights) o.weights = p.weights;
    o.mmap = p.mmap != 0;
    if (p.tokenizer) o.tokenizer = p.tokenizer;
    if (p.parallel > 0) o.parallel = p.parallel;
    *out = new rg_model{rg::api::Model::Load(dir, o)};
  });
  return st == RG_ERR_INVALID_ARGUMENT ? RG_ERR_LOAD : st;
}

void rg_model_free(rg_model* m) { delete m; }
int32_t rg_model_vocab_size(const rg_model* m) { return m ? int32_t(m->m->config().vocab_size) : 0; }
int32_t rg_model_bos_id(const rg_model* m) { return m ? m->m->config().bos_id : -1; }
int32_t rg_model_eos_id(const rg_model* m) { return m ? m->m->config().eos_id : -1; }
int rg_model_has_tokenizer(const rg_model* m) { return m && m->m->tokenizer() ? 1 : 0; }

rg_status rg_tokenize(const rg_model* m, const char* text, size_t len, int add_bos, int32_t* ids, size_t capacity,
                      size_t* n_out) {
  RG_NEED(m, "model");
  RG_NEED(text || len == 0, "text");
  RG_NEED(n_out, "n_out");
  if (!m->m->tokenizer()) return Fail(RG_ERR_NO_TOKENIZER, m->m->dir() + ": the model has no tokenizer.model");
  std::vector<int32_t> v;
  const rg_status st = Guard([&] { v = m->m->Tokenize(std::string_view(text ? text : "", len), add_bos != 0); });
  if (st != RG_OK) return st;
  *n_out = v.size();
  if (v.size() > capacity)
    return Fail(RG_ERR_INVALID_ARGUMENT, "rg_tokenize: the text has " + std::to_string(v.size()) +
                                             " tokens, the buffer room for " + std::to_string(capacity));
  if (!v.empty()) {
    RG_NEED(ids, "ids");
    std::memcpy(ids, v.data(), v.size() * sizeof(int32_t));
  }
  return RG_OK;
}

rg_status rg_detokenize(const rg_model* m, const int32_t* ids, size_t n, char* text, size_t capacity, size_t* len_out) {
  RG_NEED(m, "model");
  RG_NEED(ids || n == 0, "ids");
  RG_NEED(len_out, "len_out");
  if (!m->m->tokenizer()) return Fail(RG_ERR_NO_TOKENIZER, m->m->dir() + ": the model has no tokenizer.model");
  std::string s;
  const rg_status st = Guard([&] { s = m->m->Detokenize(std::span<const int32_t>(ids, n)); });
  if (st != RG_OK) return st;
  *len_out = s.size();
  if (s.size() > capacity)
    return Fail(RG_ERR_INVALID_ARGUMENT, "rg_detokenize: the text has " + std::to_string(s.size()) +
                                             " bytes, the buffer room for " + std::to_string(capacity));
  if (!s.empty()) std::memcpy(text, s.data(), s.size());
  if (text && s.size() < capacity) text[s.size()] = '\0';
  return RG_OK;
}

rg_status rg_state_new(const rg_model* m, rg_state** out) {
  RG_NEED(m, "model");
  RG_NEED(out, "out");
  return Guard([&] { *out = new rg_state{std::make_unique<rg::api::Sequence>(m->m)}; });
}

rg_status rg_state_copy(const rg_state* s, rg_state** out) {
  RG_NEED(s, "state");
  RG_NEED(out, "out");
  return Guard([&] { *out = new rg_state{s->s->Copy()}; });
}

void rg_state_free(rg_state* s) { delete s; }
int64_t rg_state_pos(const rg_state* s) { return s ? s->s->pos() : -1; }
const float* rg_state_logits(const rg_state* s) { return s ? s->s->logits() : nullptr; }

rg_status rg_state_to_bytes(const rg_state* s, void** bytes, size_t* n) {
  RG_NEED(s, "state");
  RG_NEED(bytes, "bytes");
  RG_NEED(n, "n");
  return Guard([&] {
    const std::string b = s->s->ToBytes();
    void* p = std::malloc(b.size());
    if (!p) throw std::bad_alloc();
    std::memcpy(p, b.data(), b.size());
    *bytes = p;
    *n = b.size();
  });
}

rg_status rg_state_from_bytes(const rg_model* m, const void* bytes, size_t n, rg_state** out) {
  RG_NEED(m, "model");
  RG_NEED(bytes || n == 0, "bytes");
  RG_NEED(out, "out");
  const rg_status st = Guard([&] {
    *out = new rg_state{rg::api::Sequence::FromBytes(
        m->m, std::string_view(static_cast<const char*>(bytes), n), "state bytes")};
  });
  return st == RG_ERR_INVALID_ARGUMENT ? RG_ERR_LOAD : st;
}

rg_status rg_state_save(const rg_state* s, const char* path) {
  RG_NEED(s, "state");
  RG_NEED(path, "path");
  return Guard([&] { s->s->Save(path); });
}

rg_status rg_state_load(const rg_model* m, const char* path, rg_state** out) {
  RG_NEED(m, "model");
  RG_NEED(path, "path");
  RG_NEED(out, "out");
  const rg_status st = Guard([&] { *out = new rg_state{rg::api::Sequence::Load(m->m, path)}; });
  return st == RG_ERR_INVALID_ARGUMENT ? RG_ERR_LOAD : st;
}

rg_status rg_eval(rg_state* s, const int32_t* ids, size_t n, int all_rows, float* logits) {
  RG_NEED(s, "state");
  RG_NEED(ids || n == 0, "ids");
  return Guard([&] { s->s->Eval(std::span<const int32_t>(ids, n), all_rows != 0, logits); });
}

rg_status rg_score(rg_state* s, const int32_t* ids, size_t n, double* logprobs) {
  RG_NEED(s, "state");
  RG_NEED(ids || n == 0, "ids");
  RG_NEED(logprobs, "logprobs");
  return Guard([&] {
    const std::vector<double> lp = s->s->Score(std::span<const int32_t>(ids, n));
    std::copy(lp.begin(), lp.end(), logprobs);
  });
}

rg_sampler_params rg_sampler_default_params(void) {
  const rg::SamplingParams d;
  return rg_sampler_params{d.temperature,      d.top_k,           d.top_p,
                           d.min_p,            d.repeat_penalty,  d.repeat_last_n,
                           d.presence_penalty, d.frequency_penalty, d.seed};
}

rg_status rg_sampler_new(const rg_model* m, const rg_sampler_params* params, rg_sampler** out) {
  RG_NEED(m, "model");
  RG_NEED(out, "out");
  const rg_sampler_params p = params ? *params : rg_sampler_default_params();
  return Guard([&] {
    const int32_t V = int32_t(m->m->config().vocab_size);
    *out = new rg_sampler{std::make_unique<rg::Sampler>(ToParams(p), V), V};
  });
}

void rg_sampler_free(rg_sampler* s) { delete s; }

rg_status rg_sampler_sample(rg_sampler* s, const float* logits, int32_t* id) {
  RG_NEED(s, "sampler");
  RG_NEED(logits, "logits");
  RG_NEED(id, "id");
  const rg_status st = Guard([&] { *id = s->s->Sample(logits); });
  return st == RG_ERR_INVALID_ARGUMENT ? RG_ERR_INTERNAL : st;  // non-finite logits
}

rg_status rg_sampler_accept(rg_sampler* s, int32_t id) {
  RG_NEED(s, "sampler");
  return Guard([&] { s->s->Accept(id); });
}

rg_generate_params rg_generate_default_params(void) {
  return rg_generate_params{128, 0, nullptr, 0, rg_sampler_default_params()};
}

rg_status rg_generate(rg_state* s, const int32_t* prompt, size_t n, const rg_generate_params* params,
                      rg_token_callback cb, void* user, int32_t* out_ids, size_t capacity, size_t* n_out) {
  RG_NEED(s, "state");
  RG_NEED(prompt || n == 0, "prompt");
  const rg_generate_params p = params ? *params : rg_generate_default_params();
  RG_NEED(p.stop_ids || p.n_stop_ids == 0, "params->stop_ids");
  return Guard([&] {
    rg::api::GenerateOptions o;
    o.max_tokens = p.max_tokens;
    o.ignore_eos = p.ignore_eos != 0;
    o.stop_ids.assign(p.stop_ids, p.stop_ids + p.n_stop_ids);
    o.sampling = ToParams(p.sampling);
    size_t written = 0;
    const rg::api::Generated g = s->s->Generate(
        std::span<const int32_t>(prompt, n), o, [&](int32_t id, std::string_view piece) {
          if (id >= 0 && out_ids && written < capacity) out_ids[written++] = id;
          return cb ? cb(id, piece.data(), piece.size(), user) != 0 : true;
        });
    if (n_out) *n_out = g.ids.size();
  });
}

}  // extern "C"
