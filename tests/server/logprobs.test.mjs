// Prompt log-probabilities (echo), as lm-evaluation-harness's local-completions
// model uses them for log-likelihood tasks, against the reference fixtures:
// token_logprobs[t] = log_softmax(reference logits row t-1)[token t], within 1e-3.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, fixtureCases, logSoftmaxAt, request } from './helpers.mjs';

const TOL = 1e-3;

for (const [name, url] of [['tiny', env.tiny], ['small', env.small]]) {
  describe(`echo log-probabilities on fixture ${name}`, () => {
    const cases = fixtureCases(name);

    test('max_tokens 0 + echo: one log-probability per prompt token, the first null', async () => {
      assert.ok(cases.length > 0);
      const c = client(url);
      for (const k of cases) {
        const r = await c.completions.create({ model: name, prompt: k.tokens, max_tokens: 0, echo: true, logprobs: 5 });
        const lp = r.choices[0].logprobs;
        assert.equal(lp.tokens.length, k.tokens.length);
        assert.equal(lp.token_logprobs[0], null);
        assert.equal(lp.top_logprobs[0], null);
        for (let t = 1; t < k.tokens.length; t++) {
          const want = logSoftmaxAt(k.logits, t - 1, k.tokens[t]);
          assert.ok(Math.abs(lp.token_logprobs[t] - want) <= TOL, `case ${k.index} token ${t}: got ${lp.token_logprobs[t]}, want ${want}`);
          // top-5 alternatives: sorted, and each equal to the reference too.
          const top = Object.entries(lp.top_logprobs[t]);
          assert.ok(top.length >= 5 && top.length <= 6);
          for (const [tok, v] of top) {
            const id = Number(tok.replace('token_id:', ''));
            assert.ok(Math.abs(v - logSoftmaxAt(k.logits, t - 1, id)) <= TOL);
          }
        }
        assert.equal(r.usage.prompt_tokens, k.tokens.length);
        assert.equal(r.usage.completion_tokens, 0);
      }
    });

    test('lm-evaluation-harness request shape: batched token prompts, max_tokens 1, logprobs 1', async () => {
      // What LocalCompletionsAPI sends for loglikelihood requests.
      const body = { model: name, prompt: cases.map((k) => k.tokens), temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
      const r = await request(url, { body });
      assert.equal(r.status, 200, r.text);
      const choices = [...r.json.choices].sort((a, b) => a.index - b.index);
      assert.equal(choices.length, cases.length);
      for (const [i, k] of cases.entries()) {
        const lp = choices[i].logprobs;
        assert.equal(lp.token_logprobs.length, k.tokens.length + 1); // + the generated token
        const ctxlen = 1;
        // lm-eval: sum(token_logprobs[ctxlen:-1]) and the is_greedy check.
        let sum = 0;
        let want = 0;
        for (let t = ctxlen; t < k.tokens.length; t++) {
          sum += lp.token_logprobs[t];
          want += logSoftmaxAt(k.logits, t - 1, k.tokens[t]);
          const top = lp.top_logprobs[t];
          const greedyRef = Array.from(k.logits.data.subarray((t - 1) * k.logits.shape[1], t * k.logits.shape[1])).reduce((b, x, j, a) => (x > a[b] ? j : b), 0);
          const isGreedy = lp.token_logprobs[t] === Math.max(...Object.values(top));
          assert.equal(isGreedy, greedyRef === k.tokens[t], `case ${k.index} token ${t}`);
        }
        assert.ok(Math.abs(sum - want) <= TOL * k.tokens.length, `case ${k.index}: ${sum} vs ${want}`);
      }
    });

    test('echo log-probabilities do not depend on concurrent traffic', async () => {
      const c = client(url);
      const k = cases[0];
      const alone = await c.completions.create({ model: name, prompt: k.tokens, max_tokens: 0, echo: true, logprobs: 2 });
      const busy = Array.from({ length: 6 }, (_, i) => c.completions.create({ model: name, prompt: [2, 10 + i], max_tokens: 40, temperature: 0, ignore_eos: true }));
      const again = await Promise.all([c.completions.create({ model: name, prompt: k.tokens, max_tokens: 0, echo: true, logprobs: 2 }), ...busy]);
      const a = alone.choices[0].logprobs.token_logprobs;
      const b = again[0].choices[0].logprobs.token_logprobs;
      for (let t = 1; t < a.length; t++) assert.ok(Math.abs(a[t] - b[t]) <= 1e-5);
    });
  });
}
