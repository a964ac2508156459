// The request log: one line per request with a timestamp, endpoint, status,
// prompt / cached / generated tokens, first-token latency and decode speed;
// --log-format json gives one JSON object per line. The start banner names
// threads, SIMD, weight format, slots and limits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { client, env, request, sleep, startServer } from './helpers.mjs';

async function logLines(srv, n, pred) {
  for (let i = 0; i < 200; i++) {
    const lines = srv.log().split('\n').filter(pred);
    if (lines.length >= n) return lines;
    await sleep(25);
  }
  assert.fail(`fewer than ${n} log lines:\n${srv.log()}`);
}

describe('request log', () => {
  describe('--log-format json', () => {
    let srv;
    before(async () => {
      srv = await startServer(['-m', env.textModel, '--log-format', 'json', '--parallel', '2']);
    });
    after(async () => srv && (await srv.kill()));

    test('one JSON object per request, with the token counts and timings', async () => {
      const c = client(srv.url);
      await c.completions.create({ model: 'm', prompt: 'Log me', max_tokens: 6, temperature: 0, ignore_eos: true });
      const stream = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ignore_eos: true, stream: true });
      for await (const _ of stream);
      await request(srv.url, { body: { prompt: 'x', max_tokens: 1, frobnicate: 1, stream_options: { sideways: true } } });
      await request(srv.url, { body: { prompt: 'x', temperature: 9 } });
      await request(srv.url, { method: 'GET', path: '/health' });  // a poll: not logged
      const lines = (await logLines(srv, 4, (l) => l.startsWith('{'))).map((l) => JSON.parse(l));
      assert.equal(lines.length, 4, JSON.stringify(lines));  // not the /health poll
      // The stream's line is written when it ends, which may be after the next request's.
      const cmpl = lines.find((l) => l.endpoint === 'completions' && l.generated_tokens === 6);
      const chat = lines.find((l) => l.endpoint === 'chat_completions');
      const extra = lines.find((l) => l.ignored_fields);
      const bad = lines.find((l) => l.status === 400);
      assert.ok(cmpl && chat && extra && bad, JSON.stringify(lines));
      for (const l of lines) assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(cmpl.endpoint, 'completions');
      assert.equal(cmpl.status, 200);
      assert.equal(cmpl.generated_tokens, 6);
      assert.ok(cmpl.prompt_tokens > 0);
      assert.equal(typeof cmpl.cached_tokens, 'number');
      assert.ok(cmpl.first_token_seconds > 0 && cmpl.first_token_seconds < cmpl.total_seconds);
      assert.ok(cmpl.decode_tokens_per_second > 0);
      assert.equal(chat.endpoint, 'chat_completions');
      assert.equal(chat.stream, true);
      assert.equal(chat.generated_tokens, 4);
      assert.deepEqual(extra.ignored_fields, ['stream_options.sideways', 'frobnicate']);
      assert.equal(extra.status, 200);
      assert.equal(bad.status, 400);
      assert.match(bad.error, /temperature/);
    });

    test('the banner names threads, SIMD, weights, slots and limits', () => {
      const banner = srv.log().split('\n').filter((l) => l.startsWith('rgemma serve:') || l.startsWith('  limits:')).join('\n');
      assert.match(banner, /\d+ threads/);
      assert.match(banner, /SIMD (scalar|avx2|avx512)/);
      assert.match(banner, /weights bf16/);
      assert.match(banner, /2 slots/);
      assert.match(banner, /max_tokens \d+, prompt \d+ tokens/);
      assert.match(banner, /CORS none; log json/);
    });
  });

  describe('text format (the default)', () => {
    let srv;
    before(async () => {
      srv = await startServer(['-m', env.textModel]);
    });
    after(async () => srv && (await srv.kill()));

    test('one line per request', async () => {
      const c = client(srv.url, { maxRetries: 0 });
      await c.completions.create({ model: 'm', prompt: 'Log me', max_tokens: 6, temperature: 0, ignore_eos: true, frobnicate: true });
      const [line] = await logLines(srv, 1, (l) => / \/v1\/completions /.test(l));
      assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z POST \/v1\/completions 200 prompt=\d+ cached=\d+ generated=6 first_token=[\d.]+s decode=[\d.]+tok\/s total=[\d.]+s ignored_fields=frobnicate$/);
    });
  });
});
