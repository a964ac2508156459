// The state cache through the HTTP API: a conversation resent in full on
// every turn (as OpenAI clients do) resumes after its history, reports it in
// usage.prompt_tokens_details.cached_tokens, and answers exactly what a cold
// request (cache_prompt: false) answers; /health counts it; the disk tier
// (--cache-dir) resumes a conversation after a restart; broken files there
// are skipped with a log line.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { client, env, fixtureCases, health, request, startServer } from './helpers.mjs';

const c = client(env.text);

// Tokens of a rendered conversation (no generation prompt): what a snapshot
// after the last reply covers.
async function tokensOf(url, messages) {
  const r = await request(url, { path: '/tokenize', body: { messages, add_generation_prompt: false } });
  assert.equal(r.status, 200, r.text);
  return r.json.count;
}

// A chat of `turns` turns, each resent in full; returns each turn's response
// and the one a cold request gave.
async function converse(cl, url, turns, extra = {}) {
  const messages = [{ role: 'system', content: 'You answer briefly.' }];
  const out = [];
  for (let t = 0; t < turns; ++t) {
    messages.push({ role: 'user', content: `Question number ${t}: what is ${t} plus ${t}?` });
    const params = { model: 'm', messages, max_tokens: 8, temperature: 0, ...extra };
    const history = t === 0 ? 0 : await tokensOf(url, messages.slice(0, -1));
    const cold = await cl.chat.completions.create({ ...params, cache_prompt: false });
    const warm = await cl.chat.completions.create(params);
    out.push({ warm, cold, history });
    messages.push({ role: 'assistant', content: warm.choices[0].message.content });
  }
  return out;
}

describe('state cache (chat)', () => {
  test('a resent conversation resumes after its history and answers as a cold request', async () => {
    // The text model's window is 16 tokens: 6 turns run far past it.
    const turns = await converse(c, env.text, 6);
    for (const [i, t] of turns.entries()) {
      assert.equal(t.warm.choices[0].message.content, t.cold.choices[0].message.content, `turn ${i}`);
      assert.equal(t.cold.usage.prompt_tokens_details.cached_tokens, 0, 'cache_prompt: false reads nothing');
      if (i > 0) {
        assert.ok(t.history > 16 || i < 2);
        assert.ok(
          t.warm.usage.prompt_tokens_details.cached_tokens >= t.history,
          `turn ${i}: cached ${t.warm.usage.prompt_tokens_details.cached_tokens} of a history of ${t.history}`,
        );
      }
    }
  });

  test('a reply cut by a stop string still lets the next turn resume after it', async () => {
    // With a stop string the returned text is shorter than what was generated.
    const first = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 12, temperature: 0 });
    const words = first.choices[0].message.content.trim().split(/\s+/);
    const stop = words.length > 2 ? words[2] : undefined;
    if (!stop) return; // the model said too little to cut
    const msgs = [{ role: 'user', content: 'Say something, please.' }];
    const cut = await c.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 12, temperature: 0, stop: [stop] });
    msgs.push({ role: 'assistant', content: cut.choices[0].message.content });
    msgs.push({ role: 'user', content: 'And then?' });
    const history = await tokensOf(env.text, msgs.slice(0, -1));
    const next = await c.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 4, temperature: 0 });
    assert.ok(next.usage.prompt_tokens_details.cached_tokens >= history, JSON.stringify(next.usage));
    const cold = await c.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 4, temperature: 0, cache_prompt: false });
    assert.equal(next.choices[0].message.content, cold.choices[0].message.content);
  });

  test('streaming reports cached_tokens with include_usage', async () => {
    const messages = [{ role: 'user', content: 'Tell me about the sea and the sky.' }];
    await c.chat.completions.create({ model: 'm', messages, max_tokens: 3, temperature: 0 });
    const stream = await c.chat.completions.create({ model: 'm', messages, max_tokens: 3, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let usage;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens);
  });

  test('/health counts hits, misses, bytes and evictions', async () => {
    const h = await health(env.text);
    assert.ok(h.cache.hits > 0 && h.cache.lookups >= h.cache.hits);
    assert.equal(h.cache.misses, h.cache.lookups - h.cache.hits);
    assert.ok(h.cache.bytes > 0 && h.cache.bytes <= h.cache.budget_bytes);
    assert.ok(h.cache.evictions >= 0 && h.cache.entries > 0);
    assert.ok(h.tokens.cached > 0);
  });
});

describe('state cache (completions, token ids)', () => {
  test('every reference fixture: resent prompts extend earlier ones and answer as cold', async () => {
    const cl = client(env.tiny);
    for (const k of fixtureCases('tiny').filter((x) => x.genPrompt)) {
      let prompt = k.genPrompt;
      for (let turn = 0; turn < 4; ++turn) {
        const body = { model: 'm', prompt, max_tokens: 5, temperature: 0, ignore_eos: true, logprobs: 2, return_tokens: true };
        const warm = await cl.completions.create(body);
        const cold = await cl.completions.create({ ...body, cache_prompt: false });
        assert.deepEqual(warm.choices[0].tokens, cold.choices[0].tokens, `case ${k.index} turn ${turn}`);
        const a = warm.choices[0].logprobs.token_logprobs, b = cold.choices[0].logprobs.token_logprobs;
        for (let i = 0; i < a.length; ++i) assert.ok(Math.abs(a[i] - b[i]) < 1e-4, `case ${k.index} turn ${turn} token ${i}`);
        // The previous turn's whole output (its last token included) was cached.
        if (turn > 0) assert.equal(warm.usage.prompt_tokens_details.cached_tokens, prompt.length - 3);
        prompt = [...prompt, ...warm.choices[0].tokens, 7, 8, 9];
      }
    }
  });
});

describe('state cache (disk tier)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-cache-dir-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = path.join(env.fixtures, 'small');

  test('a restarted server resumes a conversation from --cache-dir; broken files are skipped', async () => {
    const prompt = [2, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30];
    const body = { model: 'm', prompt, max_tokens: 6, temperature: 0, ignore_eos: true, return_tokens: true };
    let first;
    {
      const s = await startServer(['-m', model, '--cache-dir', dir]);
      try {
        first = await client(s.url).completions.create(body);
      } finally {
        // Graceful stop (SIGTERM): queued disk writes are done by the time it exits.
        s.proc.kill('SIGTERM');
        await s.exited;
        await s.kill();
      }
    }
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.rgstate'));
    assert.ok(files.length >= 2, `snapshots on disk: ${files}`);
    // Break copies of a file under names the server would look for: it must
    // skip them (a log line each) and still answer.
    fs.writeFileSync(path.join(dir, 'rgs-00000000000000000000000000000000.rgstate'), 'garbage');
    const next = [...prompt, ...first.choices[0].tokens, 40, 41, 42];
    const s = await startServer(['-m', model, '--cache-dir', dir]);
    try {
      const cl = client(s.url);
      const warm = await cl.completions.create({ ...body, prompt: next });
      assert.equal(warm.usage.prompt_tokens_details.cached_tokens, prompt.length + 6, JSON.stringify(warm.usage));
      const cold = await cl.completions.create({ ...body, prompt: next, cache_prompt: false });
      assert.deepEqual(warm.choices[0].tokens, cold.choices[0].tokens);
      assert.match(s.log(), /\[cache\] skipped .*rgs-0{32}\.rgstate/);
      const h = await health(s.url);
      assert.equal(h.cache.store_hits, 1);
      assert.match(h.cache.stores[0].status, /^ok/);
    } finally {
      await s.kill();
    }
  });
});
