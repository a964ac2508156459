// GET /metrics in the Prometheus text format (version 0.0.4): well-formed
// families, and counters that move with the requests made.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, request, waitIdle } from './helpers.mjs';

// {name{labels}: value} of every sample; checks the syntax of every line.
async function scrape(url) {
  const r = await request(url, { method: 'GET', path: '/metrics' });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const samples = {}, typed = new Set(), helped = new Set();
  for (const line of r.text.split('\n')) {
    if (!line) continue;
    let m;
    if ((m = /^# HELP (rgemma_[a-z_]+) \S.*$/.exec(line))) helped.add(m[1]);
    else if ((m = /^# TYPE (rgemma_[a-z_]+) (counter|gauge)$/.exec(line))) typed.add(m[1]);
    else {
      m = /^(rgemma_[a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+|NaN|\+Inf)$/.exec(line);
      assert.ok(m, `not a Prometheus sample line: ${line}`);
      assert.ok(typed.has(m[1]) && helped.has(m[1]), `${m[1]} has no # TYPE / # HELP before it`);
      samples[m[1] + (m[2] ?? '')] = Number(m[4]);
    }
  }
  return samples;
}

describe('/metrics', () => {
  test('requests by endpoint and status, tokens, speed, queue, slots and cache', async () => {
    const c = client(env.text);
    await waitIdle(env.text);
    const before = await scrape(env.text);
    await c.completions.create({ model: 'm', prompt: 'Count me', max_tokens: 5, temperature: 0, ignore_eos: true });
    await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'And me' }], max_tokens: 3, ignore_eos: true });
    await request(env.text, { body: { prompt: 'x', temperature: 'bad' } });  // a 400
    await waitIdle(env.text);
    const now = await scrape(env.text);
    const delta = (k) => (now[k] ?? 0) - (before[k] ?? 0);
    assert.equal(delta('rgemma_requests_total{endpoint="completions",status="200"}'), 1);
    assert.equal(delta('rgemma_requests_total{endpoint="chat_completions",status="200"}'), 1);
    assert.equal(delta('rgemma_requests_total{endpoint="completions",status="400"}'), 1);
    assert.ok(delta('rgemma_requests_total{endpoint="health",status="200"}') >= 1);  // waitIdle polls it
    assert.equal(delta('rgemma_generated_tokens_total'), 8);
    assert.ok(delta('rgemma_prompt_tokens_total') + delta('rgemma_cached_tokens_total') > 0);
    assert.ok(now.rgemma_prefill_tokens_per_second > 0);
    assert.ok(now.rgemma_decode_tokens_per_second > 0);
    assert.equal(now.rgemma_queue_depth, 0);
    assert.equal(now.rgemma_slots_busy, 0);
    assert.equal(now.rgemma_slots_total, 8);  // run.sh: --parallel 8
    for (const k of ['rgemma_cache_hits_total', 'rgemma_cache_misses_total', 'rgemma_cache_bytes', 'rgemma_cache_budget_bytes'])
      assert.ok(k in now, `${k} missing`);
    assert.ok(delta('rgemma_cache_hits_total') + delta('rgemma_cache_misses_total') >= 2);
  });

  test('busy slots and queue depth are live gauges', async () => {
    const c = client(env.text);
    await waitIdle(env.text);
    const ac = new AbortController();
    const long = c.completions.create({ model: 'm', prompt: 'Busy', max_tokens: 100000, ignore_eos: true, n: 12 }, { signal: ac.signal }).catch(() => {});
    let m;
    for (let i = 0; i < 200; i++) {
      m = await scrape(env.text);
      if (m.rgemma_slots_busy === 8 && m.rgemma_queue_depth === 4) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(m.rgemma_slots_busy, 8);
    assert.equal(m.rgemma_queue_depth, 4);
    assert.equal(m.rgemma_requests_in_flight, 1);
    ac.abort();
    await long;
    await waitIdle(env.text);
  });

  test('a server without a tokenizer or cache still answers', async () => {
    const m = await scrape(env.tiny);
    assert.ok('rgemma_generated_tokens_total' in m);
  });
});
