// Load on loopback: 64 concurrent streaming requests against a --parallel 8
// server all complete, and each output is identical to the same request run
// alone (greedy: identical tokens; sampled: same seed, same tokens).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, health, waitIdle } from './helpers.mjs';

function lcg(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

// Streams one request; returns {tokens, text, finish, usage}.
async function runStream(c, params) {
  const stream = await c.completions.create({ ...params, stream: true });
  const out = { tokens: [], text: '', finish: null, usage: null };
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      out.text += ch.text;
      if (ch.tokens) out.tokens.push(...ch.tokens);
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
    if (chunk.usage) out.usage = chunk.usage;
  }
  return out;
}

async function runChatStream(c, params) {
  const stream = await c.chat.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish };
}

describe('load', () => {
  test('64 concurrent streams at --parallel 8 equal the requests run alone', { timeout: 600_000 }, async () => {
    const h = await health(env.tiny);
    assert.equal(h.slots_total, 8);
    assert.ok(h.max_queue >= 56, 'run.sh starts this server with --max-queue 64');
    const rnd = lcg(2024);
    const reqs = [];
    for (let i = 0; i < 64; i++) {
      const len = 1 + Math.floor(rnd() * (i % 8 === 0 ? 120 : 24)); // some long prompts: chunked prefill
      const prompt = [2, ...Array.from({ length: len }, () => 3 + Math.floor(rnd() * 500))];
      const p = { model: 'tiny', prompt, max_tokens: 16 + Math.floor(rnd() * 48), ignore_eos: true, return_tokens: true };
      if (i % 2 === 0) p.temperature = 0;
      else Object.assign(p, { temperature: 0.6 + rnd(), top_p: 0.9, seed: 1000 + i });
      if (i % 7 === 3) p.frequency_penalty = 0.5;
      if (i % 5 === 1) p.top_k = 20;
      reqs.push(p);
    }
    const c = client(env.tiny);
    const alone = [];
    for (const p of reqs) alone.push(await runStream(c, p));

    const t0 = Date.now();
    const together = await Promise.all(reqs.map((p) => runStream(c, p)));
    const seconds = (Date.now() - t0) / 1000;
    for (let i = 0; i < reqs.length; i++) {
      assert.equal(together[i].finish, 'length', `request ${i}`);
      assert.equal(together[i].tokens.length, reqs[i].max_tokens, `request ${i}`);
      assert.deepEqual(together[i].tokens, alone[i].tokens, `request ${i} (${reqs[i].temperature === 0 ? 'greedy' : 'sampled'})`);
      assert.equal(together[i].usage.completion_tokens, reqs[i].max_tokens);
    }
    const total = together.reduce((s, r) => s + r.tokens.length, 0);
    console.log(`# 64 streams, ${total} tokens in ${seconds.toFixed(2)} s (${(total / seconds).toFixed(0)} tok/s aggregate)`);
    assert.ok(seconds < 300);
    await waitIdle(env.tiny);
  });

  test('24 concurrent chat streams on the text model equal the requests run alone', { timeout: 600_000 }, async () => {
    const c = client(env.text);
    const reqs = Array.from({ length: 24 }, (_, i) => ({
      model: 'm',
      messages: [{ role: 'user', content: `Request number ${i}: say something ${'long '.repeat(i % 5)}` }],
      max_tokens: 12 + (i % 4) * 4,
      ...(i % 3 === 0 ? { temperature: 0 } : { temperature: 0.9, seed: i }),
    }));
    const alone = [];
    for (const p of reqs) alone.push(await runChatStream(c, p));
    const together = await Promise.all(reqs.map((p) => runChatStream(c, p)));
    for (let i = 0; i < reqs.length; i++) assert.deepEqual(together[i], alone[i], `request ${i}`);
    await waitIdle(env.text);
  });
});
