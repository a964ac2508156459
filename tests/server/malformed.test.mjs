// Raw HTTP: malformed JSON, wrong types, oversized bodies and
// prompts, unknown routes, broken HTTP. Every answer is an OpenAI error JSON
// with the right status, and the server keeps serving.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { env, health, rawExchange, request } from './helpers.mjs';

function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers['content-type'] ?? '', /application\/json/);
  assert.ok(r.json && r.json.error, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
  if (param !== undefined) assert.equal(r.json.error.param, param, r.text);
}

describe('malformed requests', () => {
  test('invalid JSON is 400', async () => {
    for (const body of ['', '{', '{"prompt": "x",}', 'prompt=hello', '{"prompt": NaN}', '\u0000\u0001', '{"prompt":"\\ud800"}']) {
      assertError(await request(env.text, { body }), 400);
      assertError(await request(env.text, { path: '/v1/chat/completions', body }), 400);
    }
    const r = await request(env.text, { body: Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]) });
    assertError(r, 400); // invalid UTF-8 inside a string
  });

  test('a body that is not an object is 400', async () => {
    for (const body of ['[]', '[1,2]', '"prompt"', '42', 'null', 'true']) assertError(await request(env.text, { body }), 400);
  });

  test('wrong types and ranges are 400 naming the field', async () => {
    const cases = [
      [{ prompt: 'x', max_tokens: '10' }, 'max_tokens'],
      [{ prompt: 'x', max_tokens: -5 }, 'max_tokens'],
      [{ prompt: 'x', max_tokens: 2.5 }, 'max_tokens'],
      [{ prompt: 'x', temperature: [] }, 'temperature'],
      [{ prompt: 'x', top_p: 0 - 1 }, 'top_p'],
      [{ prompt: 'x', n: 0 }, 'n'],
      [{ prompt: 'x', stream: 1 }, 'stream'],
      [{ prompt: 'x', stop: { a: 1 } }, 'stop'],
      [{ prompt: 'x', logprobs: 100 }, 'logprobs'],
      [{ prompt: 'x', seed: 'abc' }, 'seed'],
      [{ prompt: 42 }, 'prompt'],
      [{ prompt: [[1, 2], 'x'] }, 'prompt'],
      [{ prompt: [1, 2, 1e12] }, 'prompt'],
      [{}, 'prompt'],
    ];
    for (const [body, param] of cases) assertError(await request(env.text, { body }), 400, param);
    assertError(await request(env.text, { path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 1 }] } }), 400, 'messages');
    assertError(await request(env.text, { path: '/v1/chat/completions', body: { messages: 'hello' } }), 400, 'messages');
  });

  test('unknown fields are ignored (clients send extras), not 400', async () => {
    const r = await request(env.text, { body: { prompt: 'x', max_tokens: 1, frobnicate: true } });
    assert.equal(r.status, 200, r.text);
  });

  test('a body over --max-body-bytes is 413', async () => {
    const h = await health(env.text);
    assert.ok(h);
    const big = JSON.stringify({ prompt: 'a'.repeat(80 * 1024) }); // run.sh: --max-body-bytes 65536
    assertError(await request(env.text, { body: big }), 413);
    // Also when the size is not announced (chunked upload).
    const chunkedBig = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(80 * 1024).toString(16)}\r\n${'{'.padEnd(80 * 1024, ' ')}\r\n0\r\n\r\n`;
    const raw = await rawExchange(env.text, chunkedBig);
    assert.match(raw, /^HTTP\/1\.1 413/);
  });

  test('a prompt over --max-prompt-tokens is 400', async () => {
    const r = await request(env.text, { body: { prompt: Array.from({ length: 600 }, () => 5), max_tokens: 1 } }); // run.sh: --max-prompt-tokens 512
    assertError(r, 400, 'prompt');
    assert.match(r.json.error.message, /limit/);
    const text = await request(env.text, { body: { prompt: 'word '.repeat(2000), max_tokens: 1 } });
    assertError(text, 400, 'prompt');
    const chat = await request(env.text, { path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'word '.repeat(2000) }] } });
    assertError(chat, 400, 'messages');
  });

  test('too many sequences in one request is 400', async () => {
    const r = await request(env.text, { body: { prompt: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], n: 16, max_tokens: 1 } });
    assertError(r, 400);
  });

  test('unknown routes are 404, wrong methods 405', async () => {
    assertError(await request(env.text, { method: 'GET', path: '/v1/nothing' }), 404);
    assertError(await request(env.text, { method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }), 404);
    assertError(await request(env.text, { method: 'GET', path: '/v1/completions' }), 405);
    assertError(await request(env.text, { method: 'DELETE', path: '/v1/models' }), 404);
  });

  test('broken HTTP does not hurt the server', async () => {
    const garbage = [
      'GARBAGE\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":', // body cut short, then close
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /health HTTP/1.1\r\n${'X-Long: ' + 'b'.repeat(20000)}\r\n\r\n`,
      '\r\n\r\n\r\n',
    ];
    await Promise.all(garbage.map((g) => rawExchange(env.text, g, { timeoutMs: 8000, endWrite: true })));
    const h = await health(env.text);
    assert.equal(h.status, 'ok');
    const ok = await request(env.text, { body: { prompt: 'still alive', max_tokens: 2 } });
    assert.equal(ok.status, 200);
  });

  test('a burst of bad requests in parallel leaves the server healthy', async () => {
    const bodies = ['{', '[]', '{"prompt": 1}', '{"prompt": "x", "n": -1}', '{"messages": 5}'];
    const all = [];
    for (let i = 0; i < 100; i++) {
      const path = i % 2 ? '/v1/completions' : '/v1/chat/completions';
      all.push(request(env.text, { path, body: bodies[i % bodies.length] }));
    }
    for (const r of await Promise.all(all)) assert.equal(r.status, 400);
    const h = await health(env.text);
    assert.equal(h.status, 'ok');
    assert.equal(h.slots_free, h.slots_total);
  });
});
