// Structured output end to end through the official openai client:
// response_format json_schema / json_object, llama-server's `grammar`
// (GBNF), a schema the compiler does not support (400 naming the keyword),
// and that logprobs report the model's distribution, not the masked one.
// The model has random weights, so unconstrained it writes garbage: every
// sample parsing and validating (python3-jsonschema) is the grammar's doing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { client, env, request, startServer } from './helpers.mjs';

const SAMPLES = 100;

// Ten schemas over the supported subset. Strings are bounded (maxLength) so a
// model that never closes a string on its own still finishes within max_tokens.
const SCHEMAS = {
  person: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer', minimum: 0, maximum: 150 }, active: { type: 'boolean' } },
    required: ['name', 'age', 'active'],
    additionalProperties: false,
  },
  color: { type: 'string', enum: ['red', 'green', 'blue'] },
  small_ints: { type: 'array', items: { type: 'integer', minimum: -100, maximum: 100 }, minItems: 1, maxItems: 5 },
  nested: {
    type: 'object',
    properties: {
      user: {
        type: 'object',
        properties: { id: { type: 'integer', minimum: 0, maximum: 9999 }, tags: { type: 'array', items: { type: 'string', maxLength: 4 }, maxItems: 3 } },
        required: ['id', 'tags'],
        additionalProperties: false,
      },
      ok: { type: 'boolean' },
    },
    required: ['user', 'ok'],
    additionalProperties: false,
  },
  any_of: { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 6 }, { type: 'null' }] },
  point: {
    type: 'object',
    properties: { kind: { const: 'point' }, x: { type: 'number' }, y: { type: 'integer', minimum: -9, maximum: 9 }, label: { type: 'string', maxLength: 4 } },
    required: ['kind', 'x', 'y'],
    additionalProperties: false,
  },
  pairs: {
    type: 'array',
    items: {
      type: 'object',
      properties: { k: { enum: ['a', 'b'] }, v: { type: 'integer', minimum: 0, maximum: 9 } },
      required: ['k', 'v'],
      additionalProperties: false,
    },
    maxItems: 3,
  },
  scalar_types: { type: ['boolean', 'null', 'integer'] },
  refs: {
    $defs: { pair: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 99 }, minItems: 2, maxItems: 2 } },
    type: 'object',
    properties: { a: { $ref: '#/$defs/pair' }, b: { $ref: '#/$defs/pair' } },
    required: ['a', 'b'],
    additionalProperties: false,
  },
  codes: {
    type: 'object',
    properties: { code: { type: 'string', minLength: 3, maxLength: 3 }, note: { type: 'string', maxLength: 6 }, level: { type: 'integer', exclusiveMinimum: 0, maximum: 5 } },
    required: ['code', 'level'],
    additionalProperties: false,
  },
};

// Validates [{schema, text}] with Debian's python3-jsonschema (an independent
// validator); returns the indices and messages of the failures.
function validateAll(cases) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-structured-'));
  const file = path.join(dir, 'cases.jsonl');
  fs.writeFileSync(file, cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
  const py = [
    'import json, sys, jsonschema',
    'bad = []',
    'for i, line in enumerate(open(sys.argv[1])):',
    '    c = json.loads(line)',
    '    try:',
    '        v = json.loads(c["text"])',
    '        jsonschema.validators.validator_for(c["schema"])(c["schema"]).validate(v)',
    '    except Exception as e:',
    '        bad.append([i, str(e)[:200]])',
    'print(json.dumps(bad))',
  ].join('\n');
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(python, ['-c', py, file], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, `python3-jsonschema failed (scripts/install-deps.sh installs it): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('structured output', () => {
  let srv, c, model;
  before(async () => {
    // A server of its own, wide enough to sample 100 choices of one request together.
    srv = await startServer(['-m', env.textModel, '--parallel', '20', '--max-n', '100', '--max-queue', '200', '--quiet']);
    c = client(srv.url);
    model = (await c.models.list()).data[0].id;
  });
  after(async () => srv && (await srv.kill()));

  test(`${Object.keys(SCHEMAS).length} schemas x ${SAMPLES} samples at temperature 1: every reply parses and validates`, async () => {
    const t0 = Date.now();
    const cases = [];
    let tokens = 0;
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      const ts = Date.now();
      const r = await c.chat.completions.create({
        model,
        messages: [{ role: 'user', content: `Give me a ${name} as JSON.` }],
        response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
        n: SAMPLES,
        temperature: 1,
        seed: 1,
        max_tokens: 400,
      });
      assert.equal(r.choices.length, SAMPLES);
      tokens += r.usage.completion_tokens;
      console.log(`  ${name}: ${r.usage.completion_tokens} tokens, ${((Date.now() - ts) / 1000).toFixed(1)} s`);
      for (const ch of r.choices) {
        assert.equal(ch.finish_reason, 'stop', `${name}: ${JSON.stringify(ch.message.content)}`);
        cases.push({ name, schema, text: ch.message.content });
      }
    }
    const bad = validateAll(cases);
    assert.deepEqual(bad.map(([i, e]) => [cases[i].name, cases[i].text, e]), []);
    const distinct = new Set(cases.map((k) => k.text)).size;
    assert.ok(distinct > cases.length / 4, `temperature 1 should vary the samples: ${distinct} distinct`);
    console.log(`structured output: ${cases.length} samples, all valid, ${distinct} distinct, ${tokens} tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  test('streamed structured output concatenates to a valid value', async () => {
    const schema = SCHEMAS.person;
    const stream = await c.chat.completions.create({
      model, messages: [{ role: 'user', content: 'A person' }], stream: true, temperature: 1, seed: 5, max_tokens: 200,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    let text = '', finish;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'stop');
    assert.deepEqual(validateAll([{ schema, text }]), []);
  });

  test('json_object mode: the reply is a JSON object', async () => {
    // With random weights a free-form object would rarely close its strings,
    // so the test pushes the model to the shortest object: +100 on "{}".
    const t = await request(srv.url, { path: '/tokenize', body: { prompt: '{}', add_special_tokens: false } });
    assert.equal(t.json.tokens.length, 1, 'the Gemma vocabulary has a "{}" token');
    const r = await c.chat.completions.create({
      model, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 50, temperature: 1,
      response_format: { type: 'json_object' }, logit_bias: { [t.json.tokens[0]]: 100 },
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(JSON.parse(r.choices[0].message.content), {});
    // The same bias alone, unconstrained, keeps writing "{}" until max_tokens.
    const free = await c.chat.completions.create({
      model, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 5, temperature: 1, ignore_eos: true,
      logit_bias: { [t.json.tokens[0]]: 100 },
    });
    assert.equal(free.choices[0].message.content, '{}'.repeat(5));
  });

  test('completions endpoint: response_format and llama-server\'s grammar (GBNF)', async () => {
    const r = await c.completions.create({
      model, prompt: 'Answer:', max_tokens: 100, temperature: 1, n: 20,
      response_format: { type: 'json_schema', json_schema: { name: 'color', schema: SCHEMAS.color } },
    });
    for (const ch of r.choices) assert.ok(['"red"', '"green"', '"blue"'].includes(ch.text.trim()), ch.text);
    const g = await request(srv.url, {
      body: { prompt: 'Yes or no?', grammar: 'root ::= ("yes" | "no") "!"', n: 20, max_tokens: 20, temperature: 1 },
    });
    assert.equal(g.status, 200, g.text);
    for (const ch of g.json.choices) {
      assert.match(ch.text, /^(yes|no)!$/);
      assert.equal(ch.finish_reason, 'stop');
    }
  });

  test('an unsupported schema keyword is a 400 naming it', async () => {
    const schema = { type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]+$' } } };
    await assert.rejects(
      c.chat.completions.create({
        model, messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'bad', schema } },
      }),
      (e) => {
        assert.equal(e.status, 400);
        assert.equal(e.param, 'response_format');
        assert.match(e.message, /unsupported keyword 'pattern'/);
        assert.match(e.message, /#\/properties\/id/);
        return true;
      },
    );
    const gbnf = await request(srv.url, { body: { prompt: 'x', grammar: 'root ::= "a" | undefined' } });
    assert.equal(gbnf.status, 400);
    assert.equal(gbnf.json.error.param, 'grammar');
    // A model without a tokenizer cannot be constrained (token ids only).
    const tiny = await request(env.tiny, { body: { prompt: [2, 3], response_format: { type: 'json_object' } } });
    assert.equal(tiny.status, 400);
    assert.equal(tiny.json.error.param, 'response_format');
  });

  test('logprobs report the model\'s distribution, not the constrained one', async () => {
    // Greedy under a grammar, then the same tokens scored as a prompt (echo):
    // each generated token's logprob equals the model's own.
    const prompt = (await request(srv.url, { path: '/tokenize', body: { prompt: 'Pick:' } })).json.tokens;
    const r = await request(srv.url, {
      body: { prompt, grammar: 'root ::= "yes" | "no"', max_tokens: 5, temperature: 0, logprobs: 0, return_tokens: true },
    });
    assert.equal(r.status, 200, r.text);
    const ch = r.json.choices[0];
    const scored = await c.completions.create({ model, prompt: [...prompt, ...ch.tokens], max_tokens: 0, echo: true, logprobs: 0 });
    const want = scored.choices[0].logprobs.token_logprobs.slice(prompt.length);
    ch.logprobs.token_logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - want[i]) < 1e-4, `${lp} vs ${want[i]}`));
    // Constrained, the token's probability would be near 1 for the last one.
    assert.ok(Math.min(...ch.logprobs.token_logprobs) < -1, JSON.stringify(ch.logprobs.token_logprobs));
  });
});
