// Aggregate decode throughput of a running `rgemma serve` at several numbers
// of concurrent streams (no dependencies; not part of the test suite).
//
//   node tests/server/bench_serve.mjs http://127.0.0.1:8080 [--streams 1,4,16] [--max-tokens 32] [--prompt-tokens 8]
//
// For each concurrency N it starts N streaming /v1/completions requests at
// once (token-id prompts, greedy, ignore_eos) and reports
//   wall tok/s   = all generated tokens / wall time of the whole batch
//   decode tok/s = tokens generated after every stream had its first token,
//                  divided by the time from that moment to the last token
//   server tok/s = generated tokens / time the scheduler spent in steps (/health)
import http from 'node:http';

const args = process.argv.slice(2);
const url = args.find((a) => a.startsWith('http')) ?? 'http://127.0.0.1:8080';
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const streams = opt('--streams', '1,4,16').split(',').map(Number);
const maxTokens = Number(opt('--max-tokens', '32'));
const promptTokens = Number(opt('--prompt-tokens', '8'));

function get(path) {
  return new Promise((resolve, reject) => {
    http.get(new URL(path, url), { agent: false }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(JSON.parse(s)));
    }).on('error', reject);
  });
}

// One stream: resolves with the arrival time of every token.
function stream(i) {
  return new Promise((resolve, reject) => {
    const prompt = [2, ...Array.from({ length: promptTokens - 1 }, (_, k) => 1000 + 37 * i + k)];
    const body = JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, return_tokens: true });
    const times = [];
    const req = http.request(new URL('/v1/completions', url), { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let buf = '';
      res.on('data', (d) => {
        buf += d;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k);
          buf = buf.slice(k + 2);
          if (!ev.startsWith('data: {')) continue;
          const j = JSON.parse(ev.slice(6));
          if (j.error) return reject(new Error(JSON.stringify(j.error)));
          const now = performance.now();
          for (const ch of j.choices) for (const _ of ch.tokens ?? []) times.push(now);
        }
      });
      res.on('end', () => resolve(times));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const h0 = await get('/health');
console.log(`server ${url}: model ${h0.model}, ${h0.slots_total} slots; ${maxTokens} tokens per stream, ${promptTokens}-token prompts`);
console.log('streams  tokens  wall_s  wall_tok/s  decode_tok/s  server_tok/s  step_ms');
for (const n of streams) {
  if (n > h0.slots_total) console.log(`(note: ${n} streams > ${h0.slots_total} slots: some wait in the queue)`);
  const before = await get('/health');
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, (_, i) => stream(i)));
  const t1 = performance.now();
  const after = await get('/health');
  const total = all.reduce((s, t) => s + t.length, 0);
  const allStarted = Math.max(...all.map((t) => t[0]));
  const lastToken = Math.max(...all.map((t) => t.at(-1)));
  const decodeTokens = all.reduce((s, t) => s + t.filter((x) => x > allStarted).length, 0);
  const gen = after.tokens.generated - before.tokens.generated;
  const busy = after.busy_seconds - before.busy_seconds;
  const steps = after.steps - before.steps;
  console.log(
    [
      String(n).padStart(7),
      String(total).padStart(7),
      ((t1 - t0) / 1000).toFixed(2).padStart(7),
      (total / ((t1 - t0) / 1000)).toFixed(2).padStart(11),
      (decodeTokens / ((lastToken - allStarted) / 1000)).toFixed(2).padStart(13),
      (gen / busy).toFixed(2).padStart(13),
      ((busy / steps) * 1000).toFixed(1).padStart(8),
    ].join(' '),
  );
}
