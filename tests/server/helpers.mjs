// Shared helpers for the `rgemma serve` tests. The servers are started by
// tests/server/run.sh, which passes their URLs in the environment:
//   RG_TEXT_URL   random 2b-shaped model WITH the Gemma tokenizer (text + chat)
//   RG_TINY_URL   fixture `tiny` (no tokenizer: token ids only), --parallel 8
//   RG_SMALL_URL  fixture `small` (no tokenizer)
//   RGEMMA_BIN    the rgemma binary (tests that need their own server)
//   RG_FIXTURES   tests/data/fixtures
//   RG_TEXT_MODEL the text model's directory
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const env = {
  text: process.env.RG_TEXT_URL,
  tiny: process.env.RG_TINY_URL,
  small: process.env.RG_SMALL_URL,
  bin: process.env.RGEMMA_BIN,
  fixtures: process.env.RG_FIXTURES,
  textModel: process.env.RG_TEXT_MODEL,
};
for (const [k, v] of Object.entries(env)) {
  if (!v) throw new Error(`missing environment for ${k}: run these tests through tests/server/run.sh`);
}

// The official client, pointed at our server. No retries: a 503 must be seen.
export function client(url, opts = {}) {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 180_000, ...opts });
}

// The model id a server reports.
export async function modelId(url) {
  const list = await client(url).models.list();
  return list.data[0].id;
}

// One HTTP request without connection reuse. Resolves {status, headers, text, json}.
export function request(url, { method = 'POST', path: p = '/v1/completions', body, headers = {}, timeoutMs = 60_000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, url);
    let data = body;
    if (data !== undefined && typeof data !== 'string' && !Buffer.isBuffer(data)) data = JSON.stringify(data);
    const h = { ...headers };
    if (data !== undefined && !('Content-Type' in h)) h['Content-Type'] = 'application/json';
    if (data !== undefined) h['Content-Length'] = Buffer.byteLength(data);
    const req = http.request(u, { method, headers: h, agent: false, timeout: timeoutMs, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${p}`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// Raw bytes over TCP; resolves with everything the server sent until it
// closed the connection (or `timeoutMs`, then whatever arrived).
export function rawExchange(url, bytes, { timeoutMs = 15_000, endWrite = false } = {}) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks = [];
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(() => {
      sock.destroy();
      done();
    }, timeoutMs);
    sock.on('connect', () => {
      sock.write(bytes);
      if (endWrite) sock.end();
    });
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', done);
  });
}

export async function health(url) {
  const r = await request(url, { method: 'GET', path: '/health' });
  return r.json;
}

// Waits until no slot is busy, nothing is queued and no request is in flight.
export async function waitIdle(url, timeoutMs = 30_000) {
  const t0 = Date.now();
  let h;
  for (;;) {
    h = await health(url);
    if (h.slots_free === h.slots_total && h.queued === 0 && h.in_flight === 0) return h;
    if (Date.now() - t0 > timeoutMs) assert.fail(`server not idle after ${timeoutMs} ms: ${JSON.stringify(h)}`);
    await sleep(25);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A streaming request over raw HTTP. Resolves {status, headers, events, raw}
// where events are the parsed `data:` payloads ('[DONE]' kept as a string).
export function sse(url, p, body, { timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      new URL(p, url),
      { method: 'POST', agent: false, timeout: timeoutMs, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, headers: res.headers, raw, events: parseSse(raw) });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('sse timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

export function parseSse(raw) {
  const events = [];
  for (const block of raw.split('\n\n')) {
    if (!block.trim()) continue;
    const lines = block.split('\n').filter((l) => l.startsWith('data: '));
    if (!lines.length) continue;
    const payload = lines.map((l) => l.slice(6)).join('\n');
    events.push(payload === '[DONE]' ? payload : JSON.parse(payload));
  }
  return events;
}

// Minimal safetensors reader (8-byte LE header length, JSON header, data).
export function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const get = (name) => {
    const t = header[name];
    if (!t) return undefined;
    const [b, e] = t.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const data = t.dtype === 'F32' ? new Float32Array(ab) : t.dtype === 'I32' ? new Int32Array(ab) : undefined;
    return { dtype: t.dtype, shape: t.shape, data };
  };
  return { names: Object.keys(header).filter((k) => k !== '__metadata__'), get };
}

// The reference fixture cases of tests/data/fixtures/<name>.
export function fixtureCases(name) {
  const st = readSafetensors(path.join(env.fixtures, name, 'expected.safetensors'));
  const cases = [];
  for (const k of st.names) {
    const m = /^tokens\.(\d+)$/.exec(k);
    if (!m) continue;
    const i = m[1];
    cases.push({
      index: i,
      tokens: Array.from(st.get(`tokens.${i}`).data),
      logits: st.get(`logits.${i}`),
      genPrompt: st.get(`gen_prompt.${i}`) ? Array.from(st.get(`gen_prompt.${i}`).data) : undefined,
      genTokens: st.get(`gen_tokens.${i}`) ? Array.from(st.get(`gen_tokens.${i}`).data) : undefined,
    });
  }
  return cases;
}

// log_softmax(row)[id] for row `r` of a [T, V] F32 tensor.
export function logSoftmaxAt(t, r, id) {
  const V = t.shape[1];
  const row = t.data.subarray(r * V, (r + 1) * V);
  let mx = -Infinity;
  for (const x of row) mx = Math.max(mx, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - mx);
  return row[id] - mx - Math.log(sum);
}

// Starts a server of our own (for shutdown / queue tests). Options: env
// (added to the environment), asOwnUser (as root: run it as a uid of its own,
// so that a limit on processes counts only its threads; see limitThreads;
// `bin` and the model must then be readable by anyone: see forAnyUser).
export async function startServer(args, { timeoutMs = 60_000, env: extraEnv = {}, asOwnUser = false, bin = env.bin } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-serve-test-'));
  fs.chmodSync(dir, 0o777);
  const portFile = path.join(dir, 'port');
  let cmd = bin;
  let argv = ['serve', ...args, '--port', '0', '--port-file', portFile];
  if (asOwnUser && process.getuid() === 0) {
    const uid = String(40000 + (process.pid % 20000));
    argv = [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', cmd, ...argv];
    cmd = 'setpriv';
  }
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...extraEnv },
  });
  let log = '';
  proc.stderr.on('data', (d) => (log += d.toString()));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const t0 = Date.now();
  let exitedEarly = false;
  exited.then(() => (exitedEarly = true));
  while (!fs.existsSync(portFile)) {
    if (exitedEarly) throw new Error(`rgemma serve exited early:\n${log}`);
    if (Date.now() - t0 > timeoutMs) {
      proc.kill('SIGKILL');
      throw new Error(`rgemma serve did not start in ${timeoutMs} ms:\n${log}`);
    }
    await sleep(20);
  }
  const port = Number(fs.readFileSync(portFile, 'utf8').trim());
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    proc,
    exited,
    log: () => log,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Threads of a process now (/proc/PID/status).
export function threadCount(pid) {
  const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// Sets RLIMIT_NPROC of a running process (as `ulimit -u` would have) so that
// it may create `more` threads beyond those of its user now. Meant for a
// server started with asOwnUser (root is exempt from the limit otherwise).
export function limitThreads(pid, more) {
  const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  let now = 0;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const st = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      if (Number(/^Uid:\s+(\d+)/m.exec(st)[1]) === uid) now += Number(/^Threads:\s+(\d+)/m.exec(st)[1]);
    } catch {
      // gone meanwhile
    }
  }
  // Setting another user's limits needs CAP_SYS_RESOURCE (often dropped in
  // containers): as root, prlimit runs as the server's own user.
  const prlimit = ['prlimit', '--pid', String(pid), `--nproc=${now + more}`];
  const r = uid !== process.getuid() && process.getuid() === 0
    ? spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...prlimit])
    : spawnSync(prlimit[0], prlimit.slice(1));
  if (r.status !== 0) throw new Error(`prlimit failed: ${r.stderr}`);
}

// Copies of files or directories that any user can read and run, in `dir`
// (the checkout may live where other users cannot look, such as /root).
export function forAnyUser(dir, ...paths) {
  fs.chmodSync(dir, 0o755);
  return paths.map((p) => {
    const copy = path.join(dir, path.basename(p));
    fs.cpSync(p, copy, { recursive: true });
    const open = (q) => {
      const st = fs.statSync(q);
      fs.chmodSync(q, st.isDirectory() || st.mode & 0o100 ? 0o755 : 0o644);
      if (st.isDirectory()) for (const e of fs.readdirSync(q)) open(path.join(q, e));
    };
    open(copy);
    return copy;
  });
}
