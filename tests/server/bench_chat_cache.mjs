// First-token latency of a long chat resent in full on every turn, as
// OpenAI clients do, with and without the state cache (not part of the test
// suite; no dependencies).
//
//   node tests/server/bench_chat_cache.mjs http://127.0.0.1:8080 [--turns 10] [--reply-tokens 64]
//        [--system-words 400] [--user-words 120] [--modes cache,nocache] [--json]
//
// The same conversation runs twice, alternating requests: once with
// cache_prompt: true (the default) and once with cache_prompt: false, each
// turn's assistant message being that run's own reply. For every turn it
// prints prompt tokens, cached tokens and the time to the first streamed
// token (TTFT). --modes cache runs only the cached conversation (e.g.
// through a load balancer, tools/bench_replicas.sh).
import http from 'node:http';

const args = process.argv.slice(2);
const url = args.find((a) => a.startsWith('http')) ?? 'http://127.0.0.1:8080';
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const turns = Number(opt('--turns', '10'));
const replyTokens = Number(opt('--reply-tokens', '64'));
const systemWords = Number(opt('--system-words', '400'));
const userWords = Number(opt('--user-words', '120'));
const asJson = args.includes('--json');
const modes = opt('--modes', 'cache,nocache').split(',');

// Deterministic English-like text (a real tokenizer sees ordinary words).
const vocab = ('the of and to in a is that for it as was with be by on not he this are or his from at which but ' +
  'have an they you were her she there been one all we their has would when if so no will more what out up who ' +
  'them some could time these two may then do first any my now such like our over man me even most made after ' +
  'also did many before must through years where much your way well down should because each just those people ' +
  'how too little state good very make world still own see men work long get here between both life being under ' +
  'never day same another know while last might us great old year off come since against go came right used take').split(' ');
function words(n, seed) {
  let x = seed * 2654435761 >>> 0;
  const out = [];
  for (let i = 0; i < n; ++i) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(vocab[x % vocab.length]);
  }
  return out.join(' ') + '.';
}

// One streamed chat request: TTFT, content and usage.
function chat(messages, cache) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({
      model: 'm', messages, max_tokens: replyTokens, temperature: 0, stream: true,
      stream_options: { include_usage: true }, cache_prompt: cache,
    });
    const t0 = process.hrtime.bigint();
    let ttft = null, content = '', usage = null;
    const req = http.request(new URL('/v1/chat/completions', url),
      { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
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
            for (const ch of j.choices ?? []) {
              if (ch.delta?.content) {
                if (ttft === null) ttft = Number(process.hrtime.bigint() - t0) / 1e9;
                content += ch.delta.content;
              }
            }
            if (j.usage) usage = j.usage;
          }
        });
        res.on('end', () => resolve({ ttft, content, usage, total: Number(process.hrtime.bigint() - t0) / 1e9 }));
        res.on('error', reject);
      });
    req.on('error', reject);
    req.end(body);
  });
}

const runs = { cache: [], nocache: [] };
const convo = { cache: [{ role: 'system', content: words(systemWords, 1) }], nocache: [{ role: 'system', content: words(systemWords, 1) }] };
for (let t = 0; t < turns; ++t) {
  for (const mode of modes) {
    const m = convo[mode];
    m.push({ role: 'user', content: words(userWords, 100 + t) });
    const r = await chat(m, mode === 'cache');
    m.push({ role: 'assistant', content: r.content });
    runs[mode].push({ turn: t + 1, prompt_tokens: r.usage.prompt_tokens, cached_tokens: r.usage.prompt_tokens_details.cached_tokens, ttft_s: r.ttft, total_s: r.total });
  }
}
if (asJson) {
  console.log(JSON.stringify(runs, null, 2));
} else if (modes.length === 1) {
  const a = runs[modes[0]];
  console.log(`turn | prompt tok | cached tok | TTFT (${modes[0]})`);
  console.log('---|---|---|---');
  for (const r of a) console.log(`${r.turn} | ${r.prompt_tokens} | ${r.cached_tokens} | ${r.ttft_s.toFixed(3)} s`);
  console.log(`turn ${turns} / turn 1 TTFT: ${(a.at(-1).ttft_s / a[0].ttft_s).toFixed(2)}x`);
} else {
  console.log('turn | prompt tok | cached (cache) | TTFT cache | TTFT no cache');
  console.log('---|---|---|---|---');
  for (let t = 0; t < turns; ++t) {
    const a = runs.cache[t], b = runs.nocache[t];
    console.log(`${t + 1} | ${a.prompt_tokens} | ${a.cached_tokens} | ${a.ttft_s.toFixed(3)} s | ${b.ttft_s.toFixed(3)} s`);
  }
  const a = runs.cache, b = runs.nocache;
  console.log(`turn ${turns} / turn 1 TTFT: cache ${(a.at(-1).ttft_s / a[0].ttft_s).toFixed(2)}x, no cache ${(b.at(-1).ttft_s / b[0].ttft_s).toFixed(2)}x`);
}
