// /v1/completions, /v1/models and /health through the official openai client.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';
import { client, env, fixtureCases, health, modelId, request } from './helpers.mjs';

describe('models and health', () => {
  test('GET /v1/models lists the served model', async () => {
    const list = await client(env.text).models.list();
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0].object, 'model');
    assert.equal(typeof list.data[0].id, 'string');
    const one = await client(env.text).models.retrieve(list.data[0].id);
    assert.equal(one.id, list.data[0].id);
    await assert.rejects(client(env.text).models.retrieve('no-such-model'), (e) => e instanceof OpenAI.NotFoundError);
  });

  test('GET /health reports slots', async () => {
    const h = await health(env.tiny);
    assert.equal(h.status, 'ok');
    assert.equal(h.slots_total, 8);
    assert.equal(typeof h.slots_free, 'number');
    assert.equal(typeof h.queued, 'number');
    assert.equal(h.has_tokenizer, false);
    assert.equal((await health(env.text)).has_tokenizer, true);
  });
});

describe('completions with text', () => {
  const c = client(env.text);

  test('text prompt: text, finish_reason and usage', async () => {
    const model = await modelId(env.text);
    const r = await c.completions.create({ model, prompt: 'The capital of France is', max_tokens: 8, temperature: 0, ignore_eos: true });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, model);
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.choices[0].text.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 8);
    assert.ok(r.usage.prompt_tokens >= 6); // BOS + the words
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  test('greedy is deterministic; seeded sampling is reproducible', async () => {
    const base = { model: 'm', prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true, return_tokens: true };
    const g1 = await c.completions.create({ ...base, temperature: 0 });
    const g2 = await c.completions.create({ ...base, temperature: 0 });
    assert.deepEqual(g1.choices[0].tokens, g2.choices[0].tokens);
    const s1 = await c.completions.create({ ...base, temperature: 1, seed: 42 });
    const s2 = await c.completions.create({ ...base, temperature: 1, seed: 42 });
    const s3 = await c.completions.create({ ...base, temperature: 1, seed: 43 });
    assert.deepEqual(s1.choices[0].tokens, s2.choices[0].tokens);
    assert.equal(s1.choices[0].text, s2.choices[0].text);
    assert.notDeepEqual(s1.choices[0].tokens, s3.choices[0].tokens);
  });

  test('n choices and batched prompts keep OpenAI index order', async () => {
    const r = await c.completions.create({ model: 'm', prompt: ['Hello', 'Goodbye'], n: 2, max_tokens: 5, temperature: 1, seed: 7, ignore_eos: true, return_tokens: true });
    assert.deepEqual(r.choices.map((x) => x.index), [0, 1, 2, 3]);
    assert.equal(r.usage.completion_tokens, 20);
    // Each prompt alone gives the same choices (choice j uses seed + j).
    for (const [p, prompt] of ['Hello', 'Goodbye'].entries()) {
      const alone = await c.completions.create({ model: 'm', prompt, n: 2, max_tokens: 5, temperature: 1, seed: 7, ignore_eos: true, return_tokens: true });
      assert.deepEqual(alone.choices.map((x) => x.tokens), [r.choices[2 * p].tokens, r.choices[2 * p + 1].tokens]);
    }
    assert.notDeepEqual(r.choices[0].tokens, r.choices[1].tokens);
  });

  test('stop strings cut the text and finish with "stop"', async () => {
    const full = await c.completions.create({ model: 'm', prompt: 'A B C', max_tokens: 24, temperature: 0, ignore_eos: true });
    const text = full.choices[0].text;
    const chars = Array.from(text); // code points: never split a surrogate pair
    assert.ok(chars.length > 12, text);
    const stop = chars.slice(8, 11).join('');
    const cut = text.indexOf(stop);
    const r = await c.completions.create({ model: 'm', prompt: 'A B C', max_tokens: 24, temperature: 0, ignore_eos: true, stop: [stop, 'zzzzzzzzzz'] });
    assert.equal(r.choices[0].text, text.slice(0, cut));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  test('token-id prompts, return_tokens and echo', async () => {
    const r = await c.completions.create({ model: 'm', prompt: [2, 651, 6037], max_tokens: 4, temperature: 0, ignore_eos: true, return_tokens: true, echo: true });
    assert.equal(r.choices[0].tokens.length, 4);
    assert.ok(r.choices[0].tokens.every((t) => Number.isInteger(t)));
    assert.equal(r.usage.prompt_tokens, 3);
    const plain = await c.completions.create({ model: 'm', prompt: [2, 651, 6037], max_tokens: 4, temperature: 0, ignore_eos: true });
    assert.ok(r.choices[0].text.endsWith(plain.choices[0].text));
    assert.ok(r.choices[0].text.length > plain.choices[0].text.length); // the echoed prompt comes first
  });

  test('echo with max_tokens 0 returns the prompt only', async () => {
    const r = await c.completions.create({ model: 'm', prompt: 'Just the prompt', max_tokens: 0, echo: true });
    assert.equal(r.choices[0].text, 'Just the prompt');
    assert.equal(r.usage.completion_tokens, 0);
  });

  test('logprobs of generated tokens', async () => {
    const r = await c.completions.create({ model: 'm', prompt: 'Numbers: 1, 2, 3,', max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: 3 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 6);
    assert.equal(lp.token_logprobs.length, 6);
    assert.equal(lp.top_logprobs.length, 6);
    assert.equal(lp.text_offset.length, 6);
    for (let i = 1; i < 6; i++) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
    for (let i = 0; i < 6; i++) {
      const top = lp.top_logprobs[i];
      assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 4);
      assert.ok(lp.token_logprobs[i] <= 0);
      // Greedy: the chosen token is the most likely one.
      assert.equal(lp.token_logprobs[i], Math.max(...Object.values(top)));
      assert.equal(top[lp.tokens[i]], lp.token_logprobs[i]);
    }
  });

  test('errors come back as OpenAI errors', async () => {
    await assert.rejects(c.completions.create({ model: 'm', prompt: 'x', temperature: 5 }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400);
      assert.equal(e.error?.param ?? e.param, 'temperature');
      return true;
    });
    await assert.rejects(c.completions.create({ model: 'm', prompt: [] }), (e) => e.status === 400);
    await assert.rejects(c.completions.create({ model: 'm', prompt: [2, 999999] }), (e) => e.status === 400 && /vocabulary/.test(e.message));
  });
});

describe('completions on a model without a tokenizer (fixture tiny)', () => {
  const c = client(env.tiny);

  test('greedy continuations equal the reference tokens', async () => {
    const cases = fixtureCases('tiny').filter((x) => x.genPrompt);
    assert.ok(cases.length > 0);
    for (const k of cases) {
      const r = await c.completions.create({ model: 'tiny', prompt: k.genPrompt, max_tokens: k.genTokens.length, temperature: 0, ignore_eos: true, return_tokens: true });
      assert.deepEqual(r.choices[0].tokens, k.genTokens, `case ${k.index}`);
      assert.equal(r.choices[0].text, '');
      assert.equal(r.usage.prompt_tokens, k.genPrompt.length);
      assert.equal(r.usage.completion_tokens, k.genTokens.length);
    }
  });

  test('text prompts get a clear 400', async () => {
    for (const prompt of ['hello', ['a', 'b']]) {
      await assert.rejects(c.completions.create({ model: 'tiny', prompt, max_tokens: 2 }), (e) => {
        assert.equal(e.status, 400);
        assert.match(e.message, /no tokenizer/);
        return true;
      });
    }
    await assert.rejects(client(env.tiny).chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }), (e) => e.status === 400 && /tokenizer/.test(e.message));
  });

  test('logprob tokens are named by id', async () => {
    const r = await c.completions.create({ model: 'tiny', prompt: [2, 5, 9], max_tokens: 2, temperature: 0, logprobs: 1, echo: true, ignore_eos: true });
    assert.deepEqual(r.choices[0].logprobs.tokens.slice(0, 3), ['token_id:2', 'token_id:5', 'token_id:9']);
  });

  test('raw response shape', async () => {
    const r = await request(env.tiny, { body: { prompt: [2, 3], max_tokens: 1, temperature: 0 } });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.deepEqual(Object.keys(r.json).slice(0, 4), ['id', 'object', 'created', 'model']);
    assert.ok(Number.isInteger(r.json.created));
  });
});
