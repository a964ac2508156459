// Driven by tests/deploy/replicas.sh (which starts Redis, 3 replicas behind
// nginx, and a cold server). Three runs of 16 conversations x 8 turns, all
// conversations at once, every turn resent in full through nginx:
//   1. normal: every turn after the first resumes after the earlier turns
//      (cached_tokens), whichever replica serves it;
//   2. one replica killed (kill -9) mid-run: every conversation completes;
//   3. Redis stopped mid-run, then started again: every request succeeds,
//      and snapshots are shared again once it is back.
// And a chat resent in full on alternating replicas: each turn resumes after
// the previous reply, which the other replica generated (its final snapshot
// reached Redis before the answer ended).
// In every run every answer equals the cold server's (greedy, exact tokens).
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';

const { NGINX_URL, COLD_URL, REPLICA_PIDS, REPLICA_URLS, CHAT_URLS, REDIS_PID_FILE, REDIS_ARGS, REDIS_LOG } = process.env;
const replicaPids = REPLICA_PIDS.split(' ').map(Number);
const replicaUrls = REPLICA_URLS.split(' ');
const CONVERSATIONS = 16, TURNS = 8, REPLY = 6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function post(url, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(new URL(path, url), {
      method: 'POST', agent: false, timeout: 120_000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(s)) : reject(new Error(`${res.statusCode} ${s}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}
function get(url, path) {
  return new Promise((resolve, reject) => {
    http.get(new URL(path, url), { agent: false }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(JSON.parse(s)));
    }).on('error', reject);
  });
}

// One turn; `retries` > 0 retries what failed at the network level (a
// client whose replica died with its request).
async function complete(url, prompt, { cache = true, retries = 0 } = {}) {
  const body = { model: 'm', prompt, max_tokens: REPLY, temperature: 0, ignore_eos: true, return_tokens: true, cache_prompt: cache };
  for (let attempt = 0; ; ++attempt) {
    try {
      const r = await post(url, '/v1/completions', body);
      return { tokens: r.choices[0].tokens, cached: r.usage.prompt_tokens_details.cached_tokens, attempts: attempt + 1 };
    } catch (e) {
      if (attempt >= retries) throw e;
      await sleep(200);
    }
  }
}

function rng(seed) {
  let x = seed >>> 0;
  return () => ((x = (x * 1103515245 + 12345) >>> 0) % 900) + 3;
}

// Runs the conversations at once; onTurn(n) is called after every finished
// turn with the count so far (to inject faults).
async function run(name, seed, { retries = 0, onTurn = async () => {} } = {}) {
  let done = 0;
  const results = await Promise.all(Array.from({ length: CONVERSATIONS }, async (_, c) => {
    const next = rng(seed * 1000 + c);
    let prompt = [2, ...Array.from({ length: 11 }, next)];
    const turns = [];
    for (let t = 0; t < TURNS; ++t) {
      const got = await complete(NGINX_URL, prompt, { retries });
      const cold = await complete(COLD_URL, prompt, { cache: false });
      assert.deepEqual(got.tokens, cold.tokens, `${name}: conversation ${c} turn ${t}: the answer differs from the cold server's`);
      turns.push({ history: t === 0 ? 0 : turns.at(-1).prompt + REPLY, prompt: prompt.length, ...got });
      prompt = [...prompt, ...got.tokens, next(), next(), next()];
      await onTurn(++done);
    }
    return turns;
  }));
  const all = results.flat();
  const covered = all.filter((t) => t.history > 0 && t.cached >= t.history).length;
  const later = all.filter((t) => t.history > 0).length;
  console.log(`${name}: ${CONVERSATIONS} conversations x ${TURNS} turns, all answers equal the cold server's; ` +
    `${covered}/${later} later turns resumed after their whole history; ${all.filter((t) => t.attempts > 1).length} retried`);
  return { results, covered, later };
}

// Snapshots the live replicas took from Redis so far.
async function storeHits() {
  let hits = 0;
  for (const url of replicaUrls) {
    try {
      hits += (await get(url, '/health')).cache.store_hits;
    } catch {
      // a killed replica
    }
  }
  return hits;
}

// 0. Chat on alternating replicas.
{
  const urls = CHAT_URLS.split(' ');
  const messages = [{ role: 'system', content: 'You answer briefly. '.repeat(10) }];
  let last = null;
  for (let t = 0; t < 4; ++t) {
    messages.push({ role: 'user', content: `Question ${t + 1}: ` + 'tell me more '.repeat(8) });
    const r = await post(urls[t % 2], '/v1/chat/completions', { model: 'm', messages, max_tokens: 8, temperature: 0 });
    const u = r.usage;
    if (last) {
      // Past the previous prompt and into (through) its reply and turn
      // markers: only the end-of-prompt snapshot would give exactly
      // last.prompt_tokens. (The reply's text may re-tokenize to fewer ids
      // than were generated, so the bound is not prompt + completion.)
      assert.ok(u.prompt_tokens_details.cached_tokens > last.prompt_tokens + 2,
        `chat turn ${t + 1} on replica ${(t % 2) + 1} resumed after the other replica's reply: cached ` +
        `${u.prompt_tokens_details.cached_tokens}, previous prompt ${last.prompt_tokens} + reply ${last.completion_tokens}`);
    }
    last = u;
    messages.push({ role: 'assistant', content: r.choices[0].message.content });
  }
  console.log('chat: 4 turns on alternating replicas, each resumed after the previous reply');
}

// 1. Normal.
{
  const { covered, later } = await run('normal', 1);
  assert.equal(covered, later, 'every turn after the first resumes after the earlier turns, whichever replica serves it');
  assert.ok((await storeHits()) > 0, 'turns were resumed from Redis');
}

// 2. A replica killed mid-run.
{
  let killed = false;
  await run('replica killed', 2, {
    retries: 3,
    onTurn: async (n) => {
      if (!killed && n >= (CONVERSATIONS * TURNS) / 4) {
        killed = true;
        process.kill(replicaPids[2], 'SIGKILL');
        console.log(`  killed replica 3 (pid ${replicaPids[2]}) after ${n} turns`);
      }
    },
  });
  assert.ok(killed);
}

// 3. Redis stopped mid-run, then started again.
{
  let phase = 0;
  const t0 = Date.now();
  const total = CONVERSATIONS * TURNS;
  let hitsAtRestart = 0;
  await run('redis outage', 3, {
    onTurn: async (n) => {
      if (phase === 0 && n >= total / 4) {
        phase = 1;
        process.kill(Number(fs.readFileSync(REDIS_PID_FILE, 'utf8')), 'SIGKILL');
        console.log(`  stopped Redis after ${n} turns`);
        await sleep(300);
      } else if (phase === 1 && n >= total / 2) {
        phase = 2;
        const pid = execSync(`redis-server ${REDIS_ARGS} >>${REDIS_LOG} 2>&1 </dev/null & echo $!`, { shell: '/bin/sh' })
          .toString().trim();
        fs.writeFileSync(REDIS_PID_FILE, pid);
        hitsAtRestart = await storeHits();
        console.log(`  started Redis again after ${n} turns (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        // The replicas retry at a pause that has grown to at most 8 s.
        await sleep(9000);
      }
    },
  });
  assert.equal(phase, 2);
  const after = await storeHits();
  assert.ok(after > hitsAtRestart, `hits from Redis resumed after it came back (${hitsAtRestart} -> ${after})`);
}
console.log('replicas: ok');
