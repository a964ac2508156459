// /v1/chat/completions through the official openai client (text model).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';
import { client, env } from './helpers.mjs';

const c = client(env.text);
const greedy = { model: 'm', temperature: 0, max_tokens: 10 };

describe('chat completions', () => {
  test('a reply with role, finish_reason and usage', async () => {
    const r = await c.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: 'Hello! Who are you?' }] });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    // <bos><start_of_turn>user\n ... <end_of_turn>\n<start_of_turn>model\n
    assert.ok(r.usage.prompt_tokens >= 10);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 10);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  test('the prompt is the Gemma chat template (same tokens as a completion of the rendered text)', async () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Tell me more' },
    ];
    const chat = await c.chat.completions.create({ ...greedy, messages, ignore_eos: true, return_tokens: true });
    const rendered = '<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nTell me more<end_of_turn>\n<start_of_turn>model\n';
    const comp = await c.completions.create({ ...greedy, prompt: rendered, ignore_eos: true, return_tokens: true });
    assert.equal(chat.usage.prompt_tokens, comp.usage.prompt_tokens);
    assert.deepEqual(chat.choices[0].tokens, comp.choices[0].tokens);
  });

  test('a system message is folded into the first user turn', async () => {
    const a = await c.chat.completions.create({ ...greedy, ignore_eos: true, messages: [{ role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'Good morning' }] });
    const b = await c.chat.completions.create({ ...greedy, ignore_eos: true, messages: [{ role: 'user', content: 'Answer in French.\n\nGood morning' }] });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
  });

  test('content given as text parts', async () => {
    const a = await c.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }] });
    const b = await c.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: 'Hello there' }] });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  });

  test('generation never emits <end_of_turn> or <eos>', async () => {
    const r = await c.chat.completions.create({ model: 'm', temperature: 1.5, seed: 3, max_tokens: 60, n: 4, return_tokens: true, messages: [{ role: 'user', content: 'Write a poem' }] });
    for (const ch of r.choices) {
      assert.ok(!ch.tokens.includes(107) && !ch.tokens.includes(1), JSON.stringify(ch.tokens));
      if (ch.finish_reason === 'length') assert.equal(ch.tokens.length, 60);
    }
  });

  test('n choices with a seed; logprobs with top_logprobs', async () => {
    const r = await c.chat.completions.create({ model: 'm', temperature: 1, seed: 11, n: 3, max_tokens: 5, ignore_eos: true, logprobs: true, top_logprobs: 2, messages: [{ role: 'user', content: 'Pick a color' }] });
    assert.deepEqual(r.choices.map((x) => x.index), [0, 1, 2]);
    for (const ch of r.choices) {
      assert.equal(ch.logprobs.content.length, 5);
      for (const t of ch.logprobs.content) {
        assert.equal(typeof t.token, 'string');
        assert.ok(t.logprob <= 0);
        assert.ok(Array.isArray(t.bytes));
        assert.equal(t.top_logprobs.length, 2);
        assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
        assert.ok(t.logprob <= t.top_logprobs[0].logprob);
      }
    }
    const again = await c.chat.completions.create({ model: 'm', temperature: 1, seed: 11, n: 3, max_tokens: 5, ignore_eos: true, messages: [{ role: 'user', content: 'Pick a color' }] });
    assert.deepEqual(again.choices.map((x) => x.message.content), r.choices.map((x) => x.message.content));
  });

  test('bad conversations are 400 naming messages', async () => {
    const bad = [
      [{ role: 'assistant', content: 'I start' }],
      [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }],
      [{ role: 'user', content: 'a' }, { role: 'system', content: 'late system' }],
      [{ role: 'robot', content: 'a' }],
      [],
    ];
    for (const messages of bad) {
      await assert.rejects(c.chat.completions.create({ ...greedy, messages }), (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.error?.param ?? e.param, 'messages');
        return true;
      });
    }
    await assert.rejects(c.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }), (e) => e.status === 400 && /not supported/.test(e.message));
  });
});
