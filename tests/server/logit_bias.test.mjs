// logit_bias (OpenAI semantics) on both endpoints through the official client:
// -100 bans a token, +100 all but forces it, and bad maps are 400 naming the field.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, request } from './helpers.mjs';

const c = client(env.text);
const base = { model: 'm', prompt: 'The weather today is', max_tokens: 6, temperature: 0, ignore_eos: true, return_tokens: true };

describe('logit_bias', () => {
  test('completions: -100 bans the greedy choice, +100 forces a token', async () => {
    const plain = await c.completions.create(base);
    const first = plain.choices[0].tokens[0];
    const banned = await c.completions.create({ ...base, logit_bias: { [first]: -100 } });
    assert.ok(!banned.choices[0].tokens.includes(first), JSON.stringify(banned.choices[0].tokens));
    const forced = await c.completions.create({ ...base, temperature: 1, seed: 3, logit_bias: { 1000: 100 } });
    assert.deepEqual(forced.choices[0].tokens, Array(6).fill(1000));
  });

  test('chat: +100 forces a token at temperature 1, n > 1', async () => {
    const r = await c.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: 'Say anything' }], max_tokens: 4, temperature: 1, n: 3,
      ignore_eos: true, return_tokens: true, logit_bias: { 2000: 100 },
    });
    for (const ch of r.choices) assert.deepEqual(ch.tokens, Array(4).fill(2000));
  });

  test('invalid maps are 400 naming logit_bias', async () => {
    for (const logit_bias of [{ abc: 1 }, { 5: 101 }, { 5: -100.5 }, { 5: 'x' }, { 256000: 1 }, [[5, 1]]]) {
      const r = await request(env.text, { body: { prompt: 'x', max_tokens: 1, logit_bias } });
      assert.equal(r.status, 400, JSON.stringify(logit_bias));
      assert.equal(r.json.error.param, 'logit_bias');
    }
    // Ids are checked against each model's vocabulary (the tiny fixture has 512).
    const tiny = await request(env.tiny, { body: { prompt: [2, 3], max_tokens: 1, logit_bias: { 512: 1 } } });
    assert.equal(tiny.status, 400);
    assert.equal(tiny.json.error.param, 'logit_bias');
    const ok = await request(env.tiny, { body: { prompt: [2, 3], max_tokens: 1, logit_bias: { 511: 1 } } });
    assert.equal(ok.status, 200, ok.text);
  });
});
