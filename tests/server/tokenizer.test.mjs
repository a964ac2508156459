// /tokenizer_info, /tokenize, /detokenize: what lm-evaluation-harness's
// "remote" tokenizer backend probes and uses (check_remote_tokenizer_support).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, request } from './helpers.mjs';

describe('remote tokenizer endpoints', () => {
  test('tokenizer_info names the special tokens and the chat template', async () => {
    const r = await request(env.text, { method: 'GET', path: '/tokenizer_info' });
    assert.equal(r.status, 200);
    assert.equal(r.json.eos_token, '<eos>');
    assert.equal(r.json.bos_token, '<bos>');
    assert.match(r.json.chat_template, /<start_of_turn>/);
  });

  test('tokenize / detokenize round trip; special tokens map to their ids', async () => {
    const t = await request(env.text, { path: '/tokenize', body: { prompt: 'Hello world', add_special_tokens: false } });
    assert.equal(t.status, 200);
    assert.ok(Array.isArray(t.json.tokens) && t.json.tokens.length >= 2);
    assert.equal(t.json.count, t.json.tokens.length);
    const d = await request(env.text, { path: '/detokenize', body: { tokens: t.json.tokens } });
    assert.equal(d.json.prompt, 'Hello world');
    // lm-eval derives eos_token_id as encode(eos_token)[0].
    const eos = await request(env.text, { path: '/tokenize', body: { prompt: '<eos>', add_special_tokens: false } });
    assert.deepEqual(eos.json.tokens, [1]);
    const withBos = await request(env.text, { path: '/tokenize', body: { prompt: 'Hello world' } });
    assert.deepEqual(withBos.json.tokens, [2, ...t.json.tokens]);
  });

  test('tokens from /tokenize give the same completion as the text', async () => {
    const c = client(env.text);
    const ids = (await request(env.text, { path: '/tokenize', body: { prompt: 'Tokens or text' } })).json.tokens;
    const a = await c.completions.create({ model: 'm', prompt: ids, max_tokens: 5, temperature: 0, ignore_eos: true });
    const b = await c.completions.create({ model: 'm', prompt: 'Tokens or text', max_tokens: 5, temperature: 0, ignore_eos: true });
    assert.equal(a.choices[0].text, b.choices[0].text);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
    const msgs = [{ role: 'user', content: 'Count the tokens' }];
    const m = await request(env.text, { path: '/tokenize', body: { messages: msgs } });
    const chat = await c.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 1 });
    assert.equal(m.json.count, chat.usage.prompt_tokens);
  });

  test('a model without a tokenizer says so (404 / 400)', async () => {
    assert.equal((await request(env.tiny, { method: 'GET', path: '/tokenizer_info' })).status, 404);
    const r = await request(env.tiny, { path: '/tokenize', body: { prompt: 'x' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /tokenizer/);
  });
});
