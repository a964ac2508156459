/* A C program on the installed C API (include/rgemma/rgemma.h, linked with
 * pkg-config): greedy generation from a prompt of token ids, printed as ids
 * on one line; then the same through a saved and reloaded state, a copied
 * state and the sampler, which must agree.
 *   greedy MODEL_DIR N ID [ID...] */
#include <rgemma/rgemma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check(rg_status st, const char* what) {
  if (st != RG_OK) {
    fprintf(stderr, "greedy: %s: %s (status %d)\n", what, rg_last_error(), (int)st);
    exit(1);
  }
}

static int count_tokens(int32_t id, const char* piece, size_t len, void* user) {
  (void)piece;
  (void)len;
  if (id >= 0) ++*(size_t*)user;
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: greedy MODEL_DIR N ID [ID...]\n");
    return 2;
  }
  const size_t n = (size_t)atoi(argv[2]);
  const size_t np = (size_t)(argc - 3);
  int32_t* prompt = malloc(np * sizeof *prompt);
  int32_t* out = malloc(n * sizeof *out);
  int32_t* again = malloc(n * sizeof *again);
  for (size_t i = 0; i < np; ++i) prompt[i] = (int32_t)atoi(argv[3 + i]);

  rg_model* m = NULL;
  check(rg_model_load(argv[1], NULL, &m), "rg_model_load");
  rg_state* s = NULL;
  check(rg_state_new(m, &s), "rg_state_new");
  rg_generate_params g = rg_generate_default_params();
  g.max_tokens = (int64_t)n;
  g.ignore_eos = 1;
  g.sampling.temperature = 0;
  size_t got = 0, seen = 0;
  check(rg_generate(s, prompt, np, &g, count_tokens, &seen, out, n, &got), "rg_generate");
  if (got != n || seen != n) {
    fprintf(stderr, "greedy: %zu tokens generated, %zu reported, %zu asked\n", got, seen, n);
    return 1;
  }
  for (size_t i = 0; i < n; ++i) printf(i ? " %d" : "%d", out[i]);
  printf("\n");

  /* The same by hand: eval the prompt, then argmax with the sampler, one token at a time. */
  rg_state* t = NULL;
  check(rg_state_new(m, &t), "rg_state_new");
  const int32_t V = rg_model_vocab_size(m);
  float* logits = malloc((size_t)V * sizeof *logits);
  check(rg_eval(t, prompt, np, 0, logits), "rg_eval");
  rg_sampler_params sp = rg_sampler_default_params();
  sp.temperature = 0;
  rg_sampler* smp = NULL;
  check(rg_sampler_new(m, &sp, &smp), "rg_sampler_new");
  for (size_t i = 0; i < n; ++i) {
    check(rg_sampler_sample(smp, rg_state_logits(t), &again[i]), "rg_sampler_sample");
    check(rg_eval(t, &again[i], 1, 0, NULL), "rg_eval");
  }
  if (memcmp(out, again, n * sizeof *out) != 0) {
    fprintf(stderr, "greedy: eval + sampler differs from rg_generate\n");
    return 1;
  }

  /* A state saved after the prompt, reloaded (bytes and file) and copied, continues identically. */
  rg_state* p = NULL;
  check(rg_state_new(m, &p), "rg_state_new");
  check(rg_eval(p, prompt, np, 0, NULL), "rg_eval");
  void* bytes = NULL;
  size_t nbytes = 0;
  check(rg_state_to_bytes(p, &bytes, &nbytes), "rg_state_to_bytes");
  rg_state* q = NULL;
  check(rg_state_from_bytes(m, bytes, nbytes, &q), "rg_state_from_bytes");
  rg_free(bytes);
  char path[] = "/tmp/rgemma_capi_XXXXXX";
  const int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  check(rg_state_save(q, path), "rg_state_save");
  rg_state* r = NULL;
  check(rg_state_load(m, path, &r), "rg_state_load");
  remove(path);
  rg_state* c = NULL;
  check(rg_state_copy(r, &c), "rg_state_copy");
  check(rg_generate(c, NULL, 0, &g, NULL, NULL, again, n, &got), "rg_generate (from a state)");
  if (got != n || memcmp(out, again, n * sizeof *out) != 0) {
    fprintf(stderr, "greedy: a reloaded state continues differently\n");
    return 1;
  }

  /* Scores: the log-probability of each generated token is finite and <= 0. */
  double* lp = malloc(n * sizeof *lp);
  check(rg_score(r, out, n, lp), "rg_score");
  for (size_t i = 0; i < n; ++i)
    if (!(lp[i] <= 0)) {
      fprintf(stderr, "greedy: score %zu is %f\n", i, lp[i]);
      return 1;
    }

  /* Errors: a status and a message, never a crash. */
  const int32_t bad = V + 5;
  if (rg_eval(r, &bad, 1, 0, NULL) != RG_ERR_INVALID_ARGUMENT || !strstr(rg_last_error(), "vocabulary")) {
    fprintf(stderr, "greedy: an id outside the vocabulary was not refused: %s\n", rg_last_error());
    return 1;
  }
  rg_model* none = NULL;
  if (rg_model_load("/nonexistent/model", NULL, &none) != RG_ERR_LOAD || none) {
    fprintf(stderr, "greedy: a missing model directory was not refused\n");
    return 1;
  }

  free(lp);
  rg_state_free(c);
  rg_state_free(r);
  rg_state_free(q);
  rg_state_free(p);
  rg_sampler_free(smp);
  rg_state_free(t);
  rg_state_free(s);
  rg_model_free(m);
  free(logits);
  free(again);
  free(out);
  free(prompt);
  return 0;
}
