// Servers of our own: a full queue answers 503; SIGTERM drains in-flight
// requests (streams complete) and exits 0; a second SIGTERM cancels them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';
import { client, env, health, request, sleep, sse, startServer, waitIdle } from './helpers.mjs';

async function streamTokens(url, params, onFirst) {
  const stream = await client(url).completions.create({ model: 'm', ...params, stream: true, return_tokens: true });
  const out = { tokens: [], finish: null };
  let first = true;
  for await (const chunk of stream) {
    if (first && onFirst) onFirst();
    first = false;
    for (const ch of chunk.choices) {
      if (ch.tokens) out.tokens.push(...ch.tokens);
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
  }
  return out;
}

describe('queue bound and shutdown', () => {
  test('a full queue answers 503 with Retry-After', { timeout: 120_000 }, async () => {
    const srv = await startServer(['-m', env.textModel, '--parallel', '1', '--max-queue', '1', '-q']);
    try {
      const ac = new AbortController();
      let streaming;
      const started = new Promise((r) => (streaming = r));
      const long = { prompt: 'busy', max_tokens: 8000, ignore_eos: true };
      const a = streamTokens(srv.url, long, streaming).catch(() => {});
      await started;
      const b = client(srv.url).completions.create({ model: 'm', ...long, stream: true }, { signal: ac.signal }).then(async (s) => { for await (const _ of s); }).catch(() => {});
      for (let i = 0; i < 200 && (await health(srv.url)).queued < 1; i++) await sleep(20);
      assert.equal((await health(srv.url)).queued, 1);
      const r = await request(srv.url, { body: { prompt: 'one more', max_tokens: 1 } });
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(r.json.error.type, 'server_error');
      assert.equal(r.json.error.code, 'queue_full');
      await assert.rejects(client(srv.url).completions.create({ model: 'm', prompt: 'x', max_tokens: 1 }), (e) => e instanceof OpenAI.InternalServerError && e.status === 503);
      ac.abort();
      await b;
      srv.proc.kill('SIGTERM');
      // Second signal: cancel the long one. Not at once: two SIGTERMs sent
      // back to back can merge into one, and then the 8000 tokens are drained.
      await sleep(200);
      srv.proc.kill('SIGTERM');
      await a;
      const { code } = await srv.exited;
      assert.equal(code, 0, srv.log());
    } finally {
      await srv.kill();
    }
  });

  test('SIGTERM drains: accepted streams complete, new requests are refused, exit 0', { timeout: 180_000 }, async () => {
    const srv = await startServer(['-m', env.textModel, '--parallel', '2']);
    try {
      const params = { prompt: 'drain me', max_tokens: 120, ignore_eos: true, temperature: 0 };
      let n = 0;
      let twoStreaming;
      const ready = new Promise((r) => (twoStreaming = r));
      const streams = [0, 1, 2].map(() => streamTokens(srv.url, params, () => ++n === 2 && twoStreaming()));
      await ready;
      for (let i = 0; i < 100 && (await health(srv.url)).queued < 1; i++) await sleep(20);
      assert.equal((await health(srv.url)).queued, 1); // the third waits for a slot
      srv.proc.kill('SIGTERM');
      await sleep(100);
      // New work is refused while draining (503), or the port is already closed.
      const late = await request(srv.url, { body: { prompt: 'late', max_tokens: 1 } }).catch((e) => ({ status: 'closed', e }));
      assert.ok(late.status === 503 || late.status === 'closed', JSON.stringify(late.status));
      const results = await Promise.all(streams);
      for (const r of results) {
        assert.equal(r.finish, 'length');
        assert.equal(r.tokens.length, 120);
        assert.deepEqual(r.tokens, results[0].tokens); // greedy, same prompt
      }
      const { code, signal } = await srv.exited;
      assert.equal(signal, null);
      assert.equal(code, 0, srv.log());
      assert.match(srv.log(), /draining/);
    } finally {
      await srv.kill();
    }
  });

  test('a second SIGTERM cancels what is in flight and exits promptly', { timeout: 120_000 }, async () => {
    const srv = await startServer(['-m', env.textModel, '--parallel', '2', '-q']);
    try {
      let streaming;
      const started = new Promise((r) => (streaming = r));
      const r = sse(srv.url, '/v1/completions', { prompt: 'forever', max_tokens: 8000, ignore_eos: true, stream: true }).catch((e) => ({ error: e }));
      for (let i = 0; i < 500; i++) {
        const h = await health(srv.url);
        if (h.tokens.generated > 0) break;
        await sleep(20);
      }
      streaming();
      await started;
      const t0 = Date.now();
      srv.proc.kill('SIGTERM');
      await sleep(200);
      srv.proc.kill('SIGTERM');
      const { code } = await srv.exited;
      assert.equal(code, 0, srv.log());
      assert.ok(Date.now() - t0 < 20_000);
      const res = await r;
      if (res.events) {
        // The stream ends with an error event (cancelled) and [DONE], never hangs.
        assert.ok(res.events.some((e) => e.error), res.raw.slice(-300));
      }
    } finally {
      await srv.kill();
    }
  });
});
