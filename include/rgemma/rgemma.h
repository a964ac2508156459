/* rgemma: RecurrentGemma (Griffin) inference on the CPU — the C API.
 *
 * Plain C, opaque handles, no C++ types across the boundary. Every function
 * that can fail returns an rg_status; on failure rg_last_error() gives the
 * one-line message (file / tensor / field, what was expected), valid until
 * the next failing call on the same thread.
 *
 * Ownership: every object made by rg_*_new / _load / _copy is owned by the
 * caller and freed with its rg_*_free; bytes returned by rg_state_to_bytes
 * are freed with rg_free. A state belongs to the model it was made for and
 * must not outlive it. Objects may be used from several threads, one call at
 * a time per object; different states of one model may be evaluated from
 * different threads at once (the model's engine runs them side by side).
 *
 * The model's state is constant in size: evaluate any number of tokens into
 * a state, copy it, save it, continue it later.
 *
 *   rg_model* m;  rg_model_load("recurrentgemma-2b-it", NULL, &m);
 *   rg_state* s;  rg_state_new(m, &s);
 *   int32_t ids[256]; size_t n;  rg_tokenize(m, "Hello", 5, 1, ids, 256, &n);
 *   rg_generate_params g = rg_generate_default_params();
 *   rg_generate(s, ids, n, &g, on_token, user, NULL, 0, NULL);
 *   rg_state_free(s);  rg_model_free(m);
 */
#ifndef RGEMMA_RGEMMA_H_
#define RGEMMA_RGEMMA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RGEMMA_API_VERSION 1

typedef enum rg_status {
  RG_OK = 0,
  RG_ERR_INVALID_ARGUMENT = 1, /* a bad parameter, id outside the vocabulary, buffer too small */
  RG_ERR_LOAD = 2,             /* a model or state file that cannot be read or is malformed */
  RG_ERR_NO_TOKENIZER = 3,     /* text given to a model directory without tokenizer.model */
  RG_ERR_CANCELLED = 4,        /* stopped by the token callback's caller (see rg_generate) */
  RG_ERR_OUT_OF_MEMORY = 5,
  RG_ERR_INTERNAL = 6          /* e.g. non-finite logits */
} rg_status;

typedef struct rg_model rg_model;
typedef struct rg_state rg_state;
typedef struct rg_sampler rg_sampler;

/* The message of the last failed call on this thread ("" if none). */
const char* rg_last_error(void);
/* "rgemma <version> (<commit>)". */
const char* rg_version(void);
/* Frees bytes returned by rg_state_to_bytes. */
void rg_free(void* p);

/* ---- models */
typedef struct rg_model_params {
  int threads;            /* compute threads; 0 = all cores */
  const char* weights;    /* NULL = as stored; "bf16", "q8" or "q4" = converted at load */
  int mmap;               /* 1 = use the weights in place from the file mapping (instant start) */
  const char* tokenizer;  /* NULL = <dir>/tokenizer.model if present */
  int parallel;           /* sequences run together by the model's engine; 0 = 4 */
} rg_model_params;

rg_model_params rg_model_default_params(void);
rg_status rg_model_load(const char* dir, const rg_model_params* params /* NULL = defaults */, rg_model** out);
void rg_model_free(rg_model* m);
int32_t rg_model_vocab_size(const rg_model* m);
int32_t rg_model_bos_id(const rg_model* m);
int32_t rg_model_eos_id(const rg_model* m);
int rg_model_has_tokenizer(const rg_model* m);

/* ---- text */
/* Text (UTF-8, len bytes) to ids, BOS first if add_bos. Writes at most
 * capacity ids; *n_out = the number the text has (RG_ERR_INVALID_ARGUMENT
 * if that is more than capacity: call again with a larger buffer). */
rg_status rg_tokenize(const rg_model* m, const char* text, size_t len, int add_bos, int32_t* ids, size_t capacity,
                      size_t* n_out);
/* Ids to text; the same contract for the byte buffer (no terminating NUL is
 * counted in *len_out; one is written when there is room). */
rg_status rg_detokenize(const rg_model* m, const int32_t* ids, size_t n, char* text, size_t capacity, size_t* len_out);

/* ---- states: one sequence each, constant size */
rg_status rg_state_new(const rg_model* m, rg_state** out);
rg_status rg_state_copy(const rg_state* s, rg_state** out);
void rg_state_free(rg_state* s);
int64_t rg_state_pos(const rg_state* s); /* tokens in the sequence */
/* The logits after the last token fed [vocab], or NULL before any. Owned by
 * the state, valid until it changes. */
const float* rg_state_logits(const rg_state* s);
/* The versioned state file format (with the logits after the last token). */
rg_status rg_state_to_bytes(const rg_state* s, void** bytes, size_t* n);
rg_status rg_state_from_bytes(const rg_model* m, const void* bytes, size_t n, rg_state** out);
rg_status rg_state_save(const rg_state* s, const char* path);
rg_status rg_state_load(const rg_model* m, const char* path, rg_state** out);

/* ---- evaluation: feed tokens into a state */
/* logits: NULL, or [n, vocab] (all_rows) / [vocab] (!all_rows) floats to receive. */
rg_status rg_eval(rg_state* s, const int32_t* ids, size_t n, int all_rows, float* logits);
/* Log-probability of each ids[i] given the state and ids[0..i), into
 * logprobs[n]; the state then holds ids. ids[0] needs the state's logits
 * (a non-empty state); for an empty state logprobs[0] is NaN. */
rg_status rg_score(rg_state* s, const int32_t* ids, size_t n, double* logprobs);

/* ---- sampling: penalties -> top-k -> temperature -> top-p -> min-p (llama.cpp's chain) */
typedef struct rg_sampler_params {
  float temperature; /* 0 = greedy */
  int32_t top_k;     /* 0 = off */
  float top_p;       /* 1 = off */
  float min_p;       /* 0 = off */
  float repeat_penalty;
  int32_t repeat_last_n;
  float presence_penalty;
  float frequency_penalty;
  uint64_t seed;
} rg_sampler_params;

rg_sampler_params rg_sampler_default_params(void);
rg_status rg_sampler_new(const rg_model* m, const rg_sampler_params* params, rg_sampler** out);
void rg_sampler_free(rg_sampler* s);
/* The next id from logits [vocab] (not recorded: call rg_sampler_accept). */
rg_status rg_sampler_sample(rg_sampler* s, const float* logits, int32_t* id);
rg_status rg_sampler_accept(rg_sampler* s, int32_t id); /* into the penalty history */

/* ---- generation */
/* Called with each generated id and its text piece (UTF-8-safe: a piece may
 * be empty while a character is incomplete; empty without a tokenizer), and
 * once more with id -1 for text held back until the end, if any. Return 0
 * to stop (rg_generate then returns RG_OK, stopped early). */
typedef int (*rg_token_callback)(int32_t id, const char* piece, size_t piece_len, void* user);

typedef struct rg_generate_params {
  int64_t max_tokens;
  int ignore_eos;
  const int32_t* stop_ids; /* more ids that end generation (not emitted), n_stop_ids of them */
  size_t n_stop_ids;
  rg_sampler_params sampling;
} rg_generate_params;

rg_generate_params rg_generate_default_params(void);
/* Feeds prompt (may be empty to continue from the state's logits) and
 * generates into the state; the generated ids go to the callback and, up
 * to capacity, to out_ids (*n_out = how many were generated). Afterwards the
 * state holds every generated token and its logits are those after the last. */
rg_status rg_generate(rg_state* s, const int32_t* prompt, size_t n, const rg_generate_params* params,
                      rg_token_callback cb, void* user, int32_t* out_ids, size_t capacity, size_t* n_out);

#ifdef __cplusplus
}
#endif

#endif /* RGEMMA_RGEMMA_H_ */
