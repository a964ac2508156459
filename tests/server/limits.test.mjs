// Servers of our own under hostile or unlucky conditions: slow clients
// (slowloris), a process/thread limit, huge prompt texts, a port already in
// use, a vocabulary larger than the tokenizer's, a model with NaN weights,
// API keys, and SIGTERM with a request half sent. Loopback only, each test
// bounded in time.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { env, forAnyUser, health, limitThreads, request, sleep, sse, startServer, threadCount } from './helpers.mjs';

const tiny = path.join(env.fixtures, 'tiny');

// A client that sends a request head one byte at a time and never finishes.
function slowClient(port, everyMs = 200) {
  const c = { data: '', closed: false };
  c.sock = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
  c.sock.on('connect', () => {
    c.sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    c.timer = setInterval(() => c.sock.write('a'), everyMs);
  });
  c.sock.on('data', (d) => (c.data += d.toString('latin1')));
  c.sock.on('error', () => {});
  c.sock.on('close', () => {
    c.closed = true;
    clearInterval(c.timer);
  });
  return c;
}

// fn(dir) with a fresh temporary directory, removed afterwards.
async function inTempDir(prefix, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// fn(srv) with a server of our own, killed afterwards.
async function withServer(args, fn, opts) {
  const srv = await startServer(args, opts);
  try {
    return await fn(srv);
  } finally {
    await srv.kill();
  }
}

async function until(cond, timeoutMs, what) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

describe('limits', () => {
  test('slow clients are held off; others are served', { timeout: 60_000 }, async () => {
    const srv = await startServer(['-m', tiny, '--max-connections', '4', '--max-connections-per-ip', '12',
      '--request-timeout', '3', '-q']);
    const slow = [];
    try {
      for (let i = 0; i < 30; i++) slow.push(slowClient(srv.port));
      await until(() => slow.filter((c) => c.data.startsWith('HTTP/1.1 503')).length === 18, 5000,
        'the connections over --max-connections-per-ip refused at once');
      // Another address is served at once, while the slow ones hold every
      // connection their address may have (and more than --max-connections).
      const t0 = Date.now();
      const r = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 2 }, localAddress: '127.0.0.2' });
      assert.equal(r.status, 200, r.text);
      const h = await request(srv.url, { method: 'GET', path: '/health', localAddress: '127.0.0.2' });
      assert.equal(h.status, 200);
      assert.ok(Date.now() - t0 < 2000, `served in ${Date.now() - t0} ms`);
      // The deadline is for the whole head: 408, then closed.
      await until(() => slow.every((c) => c.closed), 10_000, 'every slow client closed by --request-timeout');
      assert.equal(slow.filter((c) => c.data.startsWith('HTTP/1.1 408')).length, 12);
      assert.match(slow.find((c) => c.data.startsWith('HTTP/1.1 408')).data, /--request-timeout/);
      // And their address is served again.
      const again = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 2 } });
      assert.equal(again.status, 200);
    } finally {
      for (const c of slow) c.sock.destroy();
      await srv.kill();
    }
  });

  test('no thread for a request: 503 for it, the server keeps serving', { timeout: 120_000 }, () => inTempDir('rg-nproc-', async (dir) => {
    const [bin, model] = forAnyUser(dir, env.bin, tiny);
    const srv = await startServer(['-m', model, '--threads', '1', '--parallel', '2', '--max-queue', '64', '-q'],
      { asOwnUser: true, bin });
    try {
      // As `ulimit -u` with room for two more threads (two requests at a time).
      limitThreads(srv.proc.pid, 2);
      const before = threadCount(srv.proc.pid);
      const body = { prompt: [2, 3], max_tokens: 3000, ignore_eos: true, stream: true };
      const results = await Promise.all(Array.from({ length: 10 }, () =>
        sse(srv.url, '/v1/completions', body).then((r) => r, (e) => ({ status: String(e) }))));
      const statuses = results.map((r) => r.status);
      assert.ok(statuses.includes(200), JSON.stringify(statuses));
      assert.ok(statuses.includes(503), JSON.stringify(statuses));
      assert.ok(statuses.every((s) => s === 200 || s === 503), JSON.stringify(statuses));
      const refused = results.find((r) => r.status === 503);
      assert.match(refused.raw, /cannot start a thread/);
      assert.ok(threadCount(srv.proc.pid) <= before + 2);
      assert.equal(srv.proc.exitCode, null, srv.log());
      assert.equal((await health(srv.url)).status, 'ok');
      srv.proc.kill('SIGTERM');
      assert.equal((await srv.exited).code, 0, srv.log());
    } finally {
      await srv.kill();
    }
  }));

  test('prompt text over --max-prompt-bytes is refused before it is tokenized', { timeout: 60_000 }, async () => {
    // run.sh: --max-prompt-tokens 512, so 16 x 512 bytes by default.
    const big = 'word '.repeat(2000);
    const cases = [
      ['/v1/completions', { prompt: big, max_tokens: 1 }, 'prompt'],
      ['/v1/completions', { prompt: ['short', big], max_tokens: 1 }, 'prompt'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: big }] }, 'messages'],
      ['/tokenize', { prompt: big }, 'prompt'],
    ];
    for (const [p, body, param] of cases) {
      const r = await request(env.text, { path: p, body });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.param, param);
      assert.match(r.json.error.message, /10000 bytes of text.*limit of 8192 \(--max-prompt-bytes\)/);
    }
    // With the default limits a multi-megabyte prompt is refused at once
    // (tokenizing it took seconds and hundreds of MB).
    await withServer(['-m', env.textModel, '-q'], async (srv) => {
      const t0 = Date.now();
      const r = await request(srv.url, { body: { prompt: 'word '.repeat(800_000), max_tokens: 1 } });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /--max-prompt-bytes/);
      assert.ok(Date.now() - t0 < 2500, `${Date.now() - t0} ms`);
      const ok = await request(srv.url, { body: { prompt: 'word '.repeat(100), max_tokens: 1 } });
      assert.equal(ok.status, 200, ok.text);
    });
    await withServer(['-m', env.textModel, '-q', '--max-prompt-bytes', '100'], async (srv) => {
      const r = await request(srv.url, { body: { prompt: 'x'.repeat(101), max_tokens: 1 } });
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /limit of 100 /);
    });
  });

  test('a port in use is an error, not a second server sharing it', { timeout: 30_000 }, async () => {
    const port = new URL(env.tiny).port;
    const p = spawn(env.bin, ['serve', '-m', tiny, '--port', port, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const code = await Promise.race([new Promise((r) => p.on('exit', r)), sleep(10_000).then(() => 'running')]);
    if (code === 'running') p.kill('SIGKILL');
    assert.equal(code, 1, `the second server on port ${port} kept running: ${err}`);
    assert.match(err, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use`));
    assert.equal(err.trim().split('\n').length, 1, err);
  });

  test('ids beyond the tokenizer: accepted in prompts, never sampled', { timeout: 120_000 }, () => inTempDir('rg-gap-', async (dir) => {
    const model = path.join(dir, 'model');
    const init = spawnSync(env.bin, ['init', '--preset', '2b', '--hidden-size', '32', '--num-heads', '2',
      '--num-layers', '3', '--window', '8', '--vocab-size', '300000', '--dtype', 'bf16', '--seed', '5',
      '--tokenizer', path.join(env.textModel, 'tokenizer.model'), '--out', model]);
    assert.equal(init.status, 0, String(init.stderr));
    await withServer(['-m', model, '-q'], async (srv) => {
      const echo = await request(srv.url, { body: { prompt: [2, 299999, 256000, 17], max_tokens: 1, echo: true, logprobs: 1 } });
      assert.equal(echo.status, 200, echo.text);
      const gen = await request(srv.url, {
        body: { prompt: 'Once upon a time', max_tokens: 300, temperature: 1.5, seed: 3, ignore_eos: true, return_tokens: true },
      });
      assert.equal(gen.status, 200, gen.text);
      const ids = gen.json.choices[0].tokens;
      assert.equal(ids.length, 300);
      assert.ok(ids.every((id) => id < 256000), JSON.stringify(ids.filter((id) => id >= 256000)));
      const chat = await request(srv.url, {
        path: '/v1/chat/completions',
        body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100, temperature: 1.5, seed: 4, ignore_eos: true },
      });
      assert.equal(chat.status, 200, chat.text);
    });
  }));

  test('a model with NaN weights: echo log-probabilities are an error, not null', { timeout: 60_000 }, () => inTempDir('rg-nan-', async (dir) => {
    fs.cpSync(tiny, dir, { recursive: true });
    const file = path.join(dir, 'model.safetensors');
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const t = header['model.final_norm.weight'];
    assert.equal(t.dtype, 'F32');
    buf.writeFloatLE(NaN, 8 + n + t.data_offsets[0]);
    fs.writeFileSync(file, buf);
    await withServer(['-m', dir, '-q'], async (srv) => {
      const r = await request(srv.url, { body: { prompt: [2, 3, 4, 5], max_tokens: 0, echo: true, logprobs: 1 } });
      assert.equal(r.status, 500, r.text);
      assert.match(r.json.error.message, /not finite/);
      const s = await sse(srv.url, '/v1/completions', { prompt: [2, 3, 4], max_tokens: 0, echo: true, logprobs: 0, stream: true });
      assert.ok(s.events.some((e) => e.error), s.raw);
      const g = await request(srv.url, { body: { prompt: [2, 3], max_tokens: 2 } });
      assert.equal(g.status, 500, g.text);
    });
  }));

  test('API keys: from a file or the environment, Bearer in any case; /health and /tokenizer_info open', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-key-'));
    const keyFile = path.join(dir, 'key');
    fs.writeFileSync(keyFile, 'sk-from-file\n');
    const servers = [
      ['sk-from-file', await startServer(['-m', env.textModel, '-q', '--api-key-file', keyFile])],
      ['sk-from-env', await startServer(['-m', env.textModel, '-q'], { env: { RGEMMA_API_KEY: 'sk-from-env' } })],
    ];
    try {
      for (const [key, srv] of servers) {
        const body = { prompt: [2, 3], max_tokens: 1 };
        assert.equal((await request(srv.url, { body })).status, 401);
        assert.equal((await request(srv.url, { body, headers: { Authorization: 'Bearer wrong' } })).status, 401);
        assert.equal((await request(srv.url, { body, headers: { Authorization: `Bearer ${key}x` } })).status, 401);
        for (const scheme of ['Bearer', 'bearer', 'BEARER', 'BeArEr'])
          assert.equal((await request(srv.url, { body, headers: { Authorization: `${scheme} ${key}` } })).status, 200, scheme);
        assert.equal((await request(srv.url, { method: 'GET', path: '/v1/models' })).status, 401);
        assert.equal((await request(srv.url, { method: 'GET', path: '/health' })).status, 200);
        assert.equal((await request(srv.url, { method: 'GET', path: '/tokenizer_info' })).status, 200);
        assert.doesNotMatch(srv.log(), new RegExp(key));
      }
      const both = spawnSync(env.bin, ['serve', '-m', tiny, '--api-key', 'a', '--api-key-file', keyFile]);
      assert.equal(both.status, 1);
      assert.match(String(both.stderr), /only one of --api-key and --api-key-file/);
    } finally {
      for (const [, srv] of servers) await srv.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SIGTERM does not wait for a request that never arrived in full', { timeout: 60_000 }, async () => {
    const srv = await startServer(['-m', tiny, '-q']);
    try {
      const sock = net.connect(srv.port, '127.0.0.1');
      sock.on('error', () => {});
      await new Promise((r) => sock.on('connect', r));
      sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":');
      const half = net.connect(srv.port, '127.0.0.1');
      half.on('error', () => {});
      await new Promise((r) => half.on('connect', r));
      half.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
      await sleep(300);
      const t0 = Date.now();
      srv.proc.kill('SIGTERM');
      const { code } = await srv.exited;
      assert.equal(code, 0, srv.log());
      assert.ok(Date.now() - t0 < 3000, `exit took ${Date.now() - t0} ms`);
      sock.destroy();
      half.destroy();
    } finally {
      await srv.kill();
    }
  });
});
