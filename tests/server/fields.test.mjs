// Request fields llama.cpp and OpenAI clients send: llama-server's aliases
// (n_predict, cache_prompt), unknown fields ignored (and logged), several
// system messages joined in order, max_tokens bounded only by
// --max-tokens-limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { client, env, request, startServer } from './helpers.mjs';

const c = client(env.text);

describe('request fields', () => {
  test('n_predict is max_tokens (llama-server); -1 runs to a stop', async () => {
    const r = await request(env.text, { body: { prompt: 'Go', n_predict: 7, ignore_eos: true, temperature: 0 } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.completion_tokens, 7);
    const chat = await request(env.text, { path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'Go' }], n_predict: 3, ignore_eos: true } });
    assert.equal(chat.json.usage.completion_tokens, 3);
    const both = await request(env.text, { body: { prompt: 'Go', n_predict: 7, max_tokens: 7 } });
    assert.equal(both.status, 400);
    assert.equal(both.json.error.param, 'n_predict');
  });

  test('unknown fields are ignored, known ones still type-checked', async () => {
    const r = await c.completions.create({ model: 'm', prompt: 'x', max_tokens: 2, frobnicate: true, mirostat: 2, stream_options: null });
    assert.equal(r.choices.length, 1);
    const chat = await request(env.text, {
      path: '/v1/chat/completions',
      body: { messages: [{ role: 'user', content: 'hi', id: 'msg-1' }], max_tokens: 2, typical_p: 1, id_slot: -1 },
    });
    assert.equal(chat.status, 200, chat.text);
    const typed = await request(env.text, { body: { prompt: 'x', frobnicate: true, temperature: 'hot' } });
    assert.equal(typed.status, 400);
    assert.equal(typed.json.error.param, 'temperature');
  });

  test('several system messages are joined in order', async () => {
    const joined = [{ role: 'system', content: 'Be brief.' }, { role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'Hello' }];
    const folded = [{ role: 'user', content: 'Be brief.\n\nAnswer in French.\n\nHello' }];
    const tj = await request(env.text, { path: '/tokenize', body: { messages: joined } });
    const tf = await request(env.text, { path: '/tokenize', body: { messages: folded } });
    assert.equal(tj.status, 200, tj.text);
    assert.deepEqual(tj.json.tokens, tf.json.tokens);
    const a = await c.chat.completions.create({ model: 'm', messages: joined, max_tokens: 6, temperature: 0 });
    const b = await c.chat.completions.create({ model: 'm', messages: folded, max_tokens: 6, temperature: 0 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
  });

  describe('max_tokens is bounded only by --max-tokens-limit', () => {
    let srv;
    before(async () => {
      srv = await startServer(['-m', `${env.fixtures}/tiny`, '--max-tokens-limit', '3000', '--quiet']);
    });
    after(async () => srv && (await srv.kill()));

    test('up to the limit runs; beyond it is a 400 naming the flag', async () => {
      const big = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 3000, ignore_eos: true, temperature: 0 } });
      assert.equal(big.status, 200, big.text);
      assert.equal(big.json.usage.completion_tokens, 3000);
      const over = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 3001 } });
      assert.equal(over.status, 400);
      assert.equal(over.json.error.param, 'max_tokens');
      assert.match(over.json.error.message, /--max-tokens-limit/);
    });
  });
});
