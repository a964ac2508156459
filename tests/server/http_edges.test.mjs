// HTTP framing at the edges, over raw sockets: pipelined requests, bodies
// over the limit answered before they are sent, Expect: 100-continue,
// conflicting lengths, trailing bytes after the JSON, numbers out of range,
// and a client that closes right after the last event of a stream.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';

import { env, health, rawExchange, sleep, startServer } from './helpers.mjs';

function post(p, body, extra = '') {
  return `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const statuses = (raw) => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

describe('HTTP edges', () => {
  test('pipelined requests on one connection are all answered, in order', { timeout: 30_000 }, async () => {
    const a = post('/v1/completions', JSON.stringify({ prompt: [2, 3], max_tokens: 2, seed: 1 }));
    const b = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
    const c = post('/v1/completions', JSON.stringify({ prompt: [2, 4], max_tokens: 1 }), 'Connection: close\r\n');
    const t0 = Date.now();
    const raw = await rawExchange(env.tiny, a + b + c, { timeoutMs: 10_000 });
    assert.deepEqual(statuses(raw), [200, 200, 200], raw);
    assert.ok(raw.indexOf('"text_completion"') < raw.indexOf('"slots_total"'), 'answers in request order');
    assert.ok(Date.now() - t0 < 5000);
  });

  test('a Content-Length over the limit is 413 at once, before any body', { timeout: 30_000 }, async () => {
    // run.sh: the text server has --max-body-bytes 65536.
    const head = 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n';
    for (const extra of ['', 'Expect: 100-continue\r\n']) {
      const t0 = Date.now();
      const raw = await rawExchange(env.text, `${head}${extra}\r\n`, { timeoutMs: 10_000 });
      assert.match(raw, /^HTTP\/1\.1 413 /, raw);
      assert.doesNotMatch(raw, /100 Continue/);
      assert.match(raw, /--max-body-bytes/);
      assert.ok(Date.now() - t0 < 2000, `answered after ${Date.now() - t0} ms`);
    }
    // A length within the limit gets 100 Continue, then the answer.
    const body = JSON.stringify({ prompt: [2, 3], max_tokens: 1 });
    const raw = await rawExchange(env.tiny, post('/v1/completions', body, 'Expect: 100-continue\r\nConnection: close\r\n'));
    assert.deepEqual(statuses(raw), [100, 200], raw);
  });

  test('ambiguous framing is 400', { timeout: 30_000 }, async () => {
    const body = JSON.stringify({ prompt: [2, 3], max_tokens: 1 });
    const bad = [
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\n\r\n${body}`,
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: +${body.length}\r\n\r\n${body}`,
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length : ${body.length}\r\n\r\n${body}`,
      `POST /v1/completions HTTP/1.1\nHost: x\nContent-Length: ${body.length}\n\n${body}`,
    ];
    for (const req of bad) {
      const raw = await rawExchange(env.tiny, req, { timeoutMs: 10_000 });
      assert.match(raw, /^HTTP\/1\.1 400 /, JSON.stringify(req));
      assert.match(raw, /"error"/);
    }
    // The same length twice is one length.
    const twice = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    assert.match(await rawExchange(env.tiny, twice), /^HTTP\/1\.1 200 /);
  });

  test('bytes after the JSON value, and numbers out of range, are 400', { timeout: 30_000 }, async () => {
    for (const body of ['{"prompt": [2, 3], "max_tokens": 1}\u0000garbage', '{"prompt": [2, 3]} {"max_tokens": 1}', '{"prompt": [2, 3]}\u0000']) {
      const raw = await rawExchange(env.tiny, post('/v1/completions', body, 'Connection: close\r\n'));
      assert.match(raw, /^HTTP\/1\.1 400 /, JSON.stringify(body));
      assert.match(raw, /not valid JSON/);
    }
    for (const [field, value] of [['max_tokens', '1e400'], ['temperature', '-1e400'], ['top_p', '1E+999']]) {
      const raw = await rawExchange(env.tiny, post('/v1/completions', `{"prompt": [2, 3], "${field}": ${value}}`, 'Connection: close\r\n'));
      assert.match(raw, /^HTTP\/1\.1 400 /, raw);
      const json = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
      assert.equal(json.error.param, field);
      assert.match(json.error.message, new RegExp(`^${field}: the number .* is out of range`));
    }
  });

  test('a client that closes right after data: [DONE] got its whole answer', { timeout: 60_000 }, async () => {
    const srv = await startServer(['-m', path.join(env.fixtures, 'tiny')]);
    try {
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => {
          const sock = net.connect(srv.port, '127.0.0.1');
          let got = '';
          sock.on('connect', () =>
            sock.write(post('/v1/completions', JSON.stringify({ prompt: [2, 3], max_tokens: 3, stream: true }))));
          sock.on('data', (d) => {
            got += d.toString('latin1');
            if (got.includes('data: [DONE]\n\n')) sock.destroy();
          });
          sock.on('error', () => {});
          sock.on('close', resolve);
        });
      }
      await sleep(300);
      const h = await health(srv.url);
      assert.equal(h.http.client_disconnects, 0, srv.log());
      assert.doesNotMatch(srv.log(), / 499 /);
      assert.equal((srv.log().match(/ 200 stream /g) || []).length, 20, srv.log());
    } finally {
      await srv.kill();
    }
  });
});
