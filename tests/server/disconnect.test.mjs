// Clients that go away: killed mid-stream (100 processes), sockets destroyed,
// non-streaming requests aborted, requests abandoned while still queued. Every
// one must cancel its sequence and free its slot: /health shows all slots free.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { describe, test } from 'node:test';

import { client, env, health, sleep, waitIdle } from './helpers.mjs';

// A client process that starts a long stream, says "streaming" once the
// first event arrives, and then just keeps reading until it is killed.
const CLIENT = `
const http = require('node:http');
const body = JSON.stringify({ prompt: 'Tell me everything', max_tokens: 8000, ignore_eos: true, temperature: 0.8, stream: true });
const req = http.request(process.argv[1] + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
  let said = false;
  res.on('data', () => { if (!said) { said = true; process.stdout.write('streaming\\n'); } });
});
req.on('error', () => {});
req.end(body);
`;

function killMidStream(url) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('client never started streaming'));
    }, 60_000);
    child.stdout.on('data', (d) => {
      if (d.toString().includes('streaming')) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(signal);
    });
  });
}

// Opens a stream in-process and destroys the socket after `events` chunks.
function destroyAfter(url, events) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt: 'Go on', max_tokens: 8000, ignore_eos: true, stream: true });
    const req = http.request(`${url}/v1/completions`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let n = 0;
      res.on('data', () => {
        if (++n === events) {
          req.destroy();
          resolve();
        }
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    req.setTimeout(60_000, () => reject(new Error('no events')));
    req.end(body);
  });
}

describe('disconnects', () => {
  test('killing 100 clients mid-stream leaks no slot', { timeout: 600_000 }, async () => {
    await waitIdle(env.text);
    const before = await health(env.text);
    for (let batch = 0; batch < 10; batch++) {
      const signals = await Promise.all(Array.from({ length: 10 }, () => killMidStream(env.text)));
      assert.ok(signals.every((s) => s === 'SIGKILL'));
    }
    const after = await waitIdle(env.text, 60_000);
    assert.equal(after.slots_free, after.slots_total);
    assert.equal(after.queued, 0);
    assert.ok(after.sequences.cancelled - before.sequences.cancelled >= 100, JSON.stringify(after));
    assert.ok(after.http.client_disconnects - before.http.client_disconnects >= 100);
    // Nothing ran to its 8000 tokens.
    assert.ok(after.tokens.generated - before.tokens.generated < 100 * 8000 / 4);
  });

  test('destroyed sockets and aborted requests free their slots', { timeout: 300_000 }, async () => {
    const before = await health(env.text);
    await Promise.all(Array.from({ length: 20 }, (_, i) => destroyAfter(env.text, 1 + (i % 3))));
    // Non-streaming requests aborted while generating (the server notices the closed socket).
    const c = client(env.text);
    const aborts = Array.from({ length: 6 }, async () => {
      const ac = new AbortController();
      const p = c.completions.create({ model: 'm', prompt: 'x', max_tokens: 8000, ignore_eos: true }, { signal: ac.signal });
      await sleep(300);
      ac.abort();
      await assert.rejects(p);
    });
    await Promise.all(aborts);
    const after = await waitIdle(env.text, 60_000);
    assert.ok(after.sequences.cancelled - before.sequences.cancelled >= 26, JSON.stringify(after));
  });

  test('requests abandoned while queued leave the queue', { timeout: 300_000 }, async () => {
    const h0 = await waitIdle(env.text);
    const n = h0.slots_total + 5;
    const controllers = [];
    const started = [];
    for (let i = 0; i < n; i++) {
      const ac = new AbortController();
      controllers.push(ac);
      started.push(
        client(env.text)
          .completions.create({ model: 'm', prompt: 'y', max_tokens: 8000, ignore_eos: true, stream: true }, { signal: ac.signal })
          .then(async (s) => {
            for await (const _ of s);
          })
          .catch(() => {}),
      );
    }
    for (let t = 0; t < 400; t++) {
      const h = await health(env.text);
      if (h.slots_busy === h.slots_total && h.queued === 5) break;
      await sleep(25);
    }
    const mid = await health(env.text);
    assert.equal(mid.queued, 5, JSON.stringify(mid));
    for (const ac of controllers.slice(h0.slots_total)) ac.abort(); // the queued ones first
    for (let t = 0; t < 400 && (await health(env.text)).queued > 0; t++) await sleep(25);
    assert.equal((await health(env.text)).queued, 0);
    assert.equal((await health(env.text)).slots_busy, h0.slots_total);
    for (const ac of controllers) ac.abort();
    await Promise.all(started);
    await waitIdle(env.text, 60_000);
    // Still serving.
    const r = await client(env.text).completions.create({ model: 'm', prompt: 'ok', max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  });
});
