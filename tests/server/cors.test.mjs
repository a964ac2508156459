// CORS: no cross-origin access unless --cors-origin allows it; then OPTIONS
// preflights are answered and every response to that origin carries
// Access-Control-Allow-Origin (errors and streams included), while another
// origin gets none. Raw HTTP: the openai client does not do CORS.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { env, request, startServer } from './helpers.mjs';

const ALLOWED = 'http://localhost:3000';
const OTHER = 'https://evil.example';

function preflight(url, origin, path = '/v1/chat/completions') {
  return request(url, {
    method: 'OPTIONS', path,
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
  });
}

describe('CORS', () => {
  test('by default no origin is allowed: no CORS headers, preflights refused', async () => {
    const r = await request(env.text, { body: { prompt: 'x', max_tokens: 1 }, headers: { Origin: ALLOWED } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const p = await preflight(env.text, ALLOWED);
    assert.equal(p.status, 403);
    assert.equal(p.headers['access-control-allow-origin'], undefined);
    assert.equal(p.headers['access-control-allow-methods'], undefined);
  });

  describe('--cors-origin', () => {
    let srv;
    before(async () => {
      srv = await startServer(['-m', `${env.fixtures}/tiny`, '--cors-origin', `${ALLOWED}, http://127.0.0.1:8000/`, '--api-key', 'k', '--quiet']);
    });
    after(async () => srv && (await srv.kill()));
    const auth = { Authorization: 'Bearer k' };

    test('a preflight from an allowed origin is answered (no API key needed)', async () => {
      for (const origin of [ALLOWED, 'http://127.0.0.1:8000', 'HTTP://LOCALHOST:3000']) {
        const p = await preflight(srv.url, origin);
        assert.equal(p.status, 204, origin);
        assert.equal(p.headers['access-control-allow-origin'], origin);
        assert.match(p.headers['access-control-allow-methods'], /POST/);
        assert.match(p.headers['access-control-allow-headers'], /authorization/i);
        assert.match(p.headers.vary ?? '', /Origin/);
      }
    });

    test('every response to an allowed origin carries the header: success, error, stream, GET', async () => {
      const ok = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 1 }, headers: { ...auth, Origin: ALLOWED } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
      const bad = await request(srv.url, { body: { prompt: [2, 3], temperature: 'x' }, headers: { ...auth, Origin: ALLOWED } });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers['access-control-allow-origin'], ALLOWED);
      const unauth = await request(srv.url, { body: { prompt: [2, 3] }, headers: { Origin: ALLOWED } });
      assert.equal(unauth.status, 401);
      assert.equal(unauth.headers['access-control-allow-origin'], ALLOWED);
      const models = await request(srv.url, { method: 'GET', path: '/v1/models', headers: { ...auth, Origin: ALLOWED } });
      assert.equal(models.headers['access-control-allow-origin'], ALLOWED);
      const missing = await request(srv.url, { method: 'GET', path: '/nothing', headers: { Origin: ALLOWED } });
      assert.equal(missing.status, 404);
      assert.equal(missing.headers['access-control-allow-origin'], ALLOWED);
    });

    test('a streamed response carries it too', async () => {
      const res = await new Promise((resolve, reject) => {
        const data = JSON.stringify({ prompt: [2, 3], max_tokens: 3, stream: true });
        const req = http.request(new URL('/v1/completions', srv.url), {
          method: 'POST', agent: false,
          headers: { ...auth, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), Origin: ALLOWED },
        }, (r) => {
          r.resume();
          r.on('end', () => resolve(r));
        });
        req.on('error', reject);
        req.end(data);
      });
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'], /text\/event-stream/);
      assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
    });

    test('another origin gets no CORS headers, and its preflight is refused', async () => {
      const r = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 1 }, headers: { ...auth, Origin: OTHER } });
      assert.equal(r.status, 200);  // the server answers; the browser withholds it from the page
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      assert.equal(r.headers['access-control-allow-methods'], undefined);
      const p = await preflight(srv.url, OTHER);
      assert.equal(p.status, 403);
      assert.equal(p.headers['access-control-allow-origin'], undefined);
      // A request without an Origin (curl, the openai client) is not a CORS request.
      const plain = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 1 }, headers: auth });
      assert.equal(plain.headers['access-control-allow-origin'], undefined);
    });
  });

  test('a malformed --cors-origin is refused at start', async () => {
    await assert.rejects(startServer(['-m', `${env.fixtures}/tiny`, '--cors-origin', 'localhost:3000/app']), /--cors-origin: 'localhost:3000\/app' is not an origin/);
  });
});
