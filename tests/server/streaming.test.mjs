// Server-Sent Events: the openai client's stream iterator and the raw wire format.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { client, env, sse } from './helpers.mjs';

const c = client(env.text);

// Usage without prompt_tokens_details (the cached count depends on what ran before).
function withoutCached(u) {
  const { prompt_tokens_details, ...rest } = u;
  assert.ok(prompt_tokens_details.cached_tokens >= 0 && prompt_tokens_details.cached_tokens <= u.prompt_tokens);
  return rest;
}

describe('streaming completions', () => {
  test('streamed text equals the non-streamed text', async () => {
    const params = { model: 'm', prompt: 'In the beginning', max_tokens: 20, temperature: 0, ignore_eos: true };
    const whole = await c.completions.create(params);
    const stream = await c.completions.create({ ...params, stream: true });
    let text = '';
    let finish = null;
    let chunks = 0;
    let usage = null;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'text_completion');
      for (const ch of chunk.choices) {
        text += ch.text;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(chunks >= 2);
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, 'length');
    // usage rides on the last chunk; the same prompt just ran, so the stream
    // resumed from its snapshot: every prompt token is cached.
    assert.deepEqual(withoutCached(usage), withoutCached(whole.usage));
    assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens);
  });

  test('stream_options.include_usage sends a final usage chunk with no choices', async () => {
    const stream = await c.completions.create({ model: 'm', prompt: 'Hi', max_tokens: 5, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 5);
    assert.ok(chunks.slice(0, -1).every((x) => x.choices.length === 1 && !x.usage));
  });

  test('n = 2 streams both choices, each equal to the non-streamed one', async () => {
    const params = { model: 'm', prompt: 'Roses are', max_tokens: 8, temperature: 1, seed: 5, n: 2, ignore_eos: true };
    const whole = await c.completions.create(params);
    const stream = await c.completions.create({ ...params, stream: true });
    const texts = ['', ''];
    const finished = [false, false];
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finished[ch.index] = true;
      }
    }
    assert.deepEqual(finished, [true, true]);
    assert.deepEqual(texts, whole.choices.map((x) => x.text));
  });

  test('echo + logprobs stream the prompt first', async () => {
    const r = await sse(env.text, '/v1/completions', { prompt: 'Echo me', max_tokens: 3, temperature: 0, echo: true, logprobs: 1, ignore_eos: true, stream: true });
    assert.equal(r.status, 200);
    const first = r.events[0];
    assert.equal(first.choices[0].text, 'Echo me');
    const lp = first.choices[0].logprobs;
    assert.equal(lp.token_logprobs[0], null); // BOS has no log-probability
    assert.ok(lp.token_logprobs.slice(1).every((x) => typeof x === 'number' && x <= 0));
    const gen = r.events.slice(1, -1).flatMap((e) => (e.choices[0]?.logprobs ? e.choices[0].logprobs.token_logprobs : []));
    assert.equal(gen.length, 3);
  });

  test('wire format: text/event-stream, data: lines, [DONE] last', async () => {
    const r = await sse(env.text, '/v1/completions', { prompt: 'x', max_tokens: 4, temperature: 0, ignore_eos: true, stream: true, return_tokens: true });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.ok(r.raw.endsWith('data: [DONE]\n\n'));
    assert.equal(r.events.at(-1), '[DONE]');
    const ids = r.events.slice(0, -1).flatMap((e) => e.choices[0].tokens ?? []);
    assert.equal(ids.length, 4);
    const ids2 = (await c.completions.create({ model: 'm', prompt: 'x', max_tokens: 4, temperature: 0, ignore_eos: true, return_tokens: true })).choices[0].tokens;
    assert.deepEqual(ids, ids2);
  });

  test('errors before the stream starts are plain JSON errors', async () => {
    const r = await sse(env.text, '/v1/completions', { prompt: 'x', stream: true, temperature: 'hot' });
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.raw).error.param, 'temperature');
  });
});

describe('streaming chat', () => {
  test('role first, content deltas, finish_reason; equals the non-streamed reply', async () => {
    const params = { model: 'm', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16, temperature: 0 };
    const whole = await c.chat.completions.create(params);
    const stream = await c.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const content = chunks.flatMap((x) => x.choices.map((ch) => ch.delta.content ?? '')).join('');
    assert.equal(content, whole.choices[0].message.content);
    const finals = chunks.flatMap((x) => x.choices.filter((ch) => ch.finish_reason));
    assert.equal(finals.length, 1);
    assert.equal(finals[0].finish_reason, whole.choices[0].finish_reason);
    assert.deepEqual(withoutCached(chunks.at(-1).usage), withoutCached(whole.usage));
    assert.equal(chunks.at(-1).usage.prompt_tokens_details.cached_tokens, whole.usage.prompt_tokens);
  });

  test('the client helper accumulates the stream', async () => {
    const runner = c.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
    const final = await runner.finalChatCompletion();
    const whole = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
  });
});
