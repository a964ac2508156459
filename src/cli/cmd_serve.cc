// rgemma serve: an OpenAI-compatible HTTP server with continuous batching.
//   rgemma serve -m DIR [--host 127.0.0.1] [--port 8080] [--parallel N]
// Endpoints: GET /health, GET /v1/models, POST /v1/completions,
// POST /v1/chat/completions (see src/server/http_server.h).
// SIGTERM / SIGINT: stop accepting, finish what is in flight, exit 0; a second
// signal cancels what is left. Connections whose request has not arrived in
// full are closed at once (they never started).
// The API key comes from --api-key, --api-key-file or $RGEMMA_API_KEY.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <system_error>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "core/error.h"
#include "core/file_io.h"
#include "generate/disk_store.h"
#include "generate/engine.h"
#include "generate/redis_store.h"
#include "ops/cpu_features.h"
#include "sampling/grammar/token_trie.h"
#include "server/cors.h"
#include "server/http_server.h"
#include "tokenizer/grammar_vocab.h"

namespace rg::cli {
namespace {

constexpr const char* kApiKeyEnv = "RGEMMA_API_KEY";

struct ServeArgs {
  ModelFlags m;
  std::string host = "127.0.0.1", alias, port_file, api_key, api_key_file, cache_dir, state_store, log_format = "text";
  int64_t state_store_ttl = 86400;
  int port = 8080;
  bool quiet = false;
  double drain_timeout = 600;
  size_t cache_mb = 2048, cache_dir_mb = 16384;
  size_t max_prompt_bytes = 0;  // 0: 16 bytes per --max-prompt-tokens
  EngineOptions engine = ServeDefaults();
  server::HttpOptions http;

  static EngineOptions ServeDefaults() {
    EngineOptions e;
    e.parallel = 4;           // sequences decoded together
    e.prefill_chunk = 64;     // prompt rows per step: bounds how long a new prompt stalls the others
    return e;
  }
};

std::string ModelId(const ServeArgs& a) {
  if (!a.alias.empty()) return a.alias;
  std::filesystem::path p(a.m.model);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() || name == "." ? "rgemma" : name;
}

// The API key: --api-key, --api-key-file (keeps it out of `ps`) or the
// environment (RGEMMA_API_KEY), at most one of them; "" = no key.
std::string ApiKey(const ServeArgs& a) {
  const char* env = std::getenv(kApiKeyEnv);
  RG_CHECK(a.api_key.empty() || a.api_key_file.empty(), "give only one of --api-key and --api-key-file");
  std::string key = a.api_key;
  if (!a.api_key_file.empty()) {
    key = ReadRegularFile(a.api_key_file, 4096, "API key file");
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();  // the newline
    RG_CHECK(!key.empty(), a.api_key_file, ": the API key file is empty");
  } else if (key.empty() && env) {
    key = env;
  }
  for (unsigned char ch : key)
    RG_CHECK(ch > 0x20 && ch < 0x7f, "the API key must be printable ASCII without spaces");
  return key;
}

void RunServe(ServeArgs a) {
  // Signals are taken by one thread with sigwait: block them before any
  // thread exists so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // internal: wakes the signal thread at exit
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  a.http.api_key = ApiKey(a);
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1" && !a.quiet)
    std::fprintf(stderr, "warning: listening on %s: reachable from other machines%s\n", a.host.c_str(),
                 a.http.api_key.empty() ? " and no API key is set (--api-key-file)" : "");

  a.http.log_format = server::ParseLogFormat(a.log_format);  // flag errors before the load
  const server::CorsPolicy cors(a.http.cors_origins);
  ThreadPool pool(ResolveThreads(a.m.threads));
  auto weights = LoadModel(a.m, pool, a.quiet ? LoadNotes::kNone : LoadNotes::kAll);
  const Config& c = weights->config;
  auto tok = LoadTokenizerFor(a.m.model, a.m.tokenizer, /*required=*/false);
  a.engine.sample_vocab = SampleableVocab(c, tok.get(), a.quiet);
  if (!tok && !a.quiet)
    std::fprintf(stderr, "note: %s has no tokenizer.model: serving token ids only (text prompts get 400)\n",
                 a.m.model.c_str());

  a.http.limits.max_prompt_bytes =
      a.max_prompt_bytes ? a.max_prompt_bytes : size_t(16) * size_t(a.http.limits.max_prompt_tokens);
  a.engine.max_top_logprobs = a.http.limits.max_logprobs;
  a.engine.cache_bytes = a.cache_mb << 20;
  a.engine.kernels = a.m.kernels();
  Engine engine(weights, pool, a.engine);
  if (!a.cache_dir.empty()) {
    RG_CHECK(engine.cache(), "--cache-dir needs the memory cache (--cache-mb > 0)");
    engine.cache()->AddStore(
        std::make_unique<DiskStore>(a.cache_dir, a.cache_dir_mb << 20, c, engine.cache()->fingerprint()));
  }
  if (!a.state_store.empty()) {
    RG_CHECK(engine.cache(), "--state-store needs the memory cache (--cache-mb > 0)");
    engine.cache()->AddStore(
        std::make_unique<RedisStore>(a.state_store, a.state_store_ttl, c, engine.cache()->fingerprint()));
    a.http.report_after_store = true;  // another replica may get the next turn
  }
  server::ModelInfo info;
  info.id = ModelId(a);
  info.config = &c;
  info.tokenizer = tok.get();
  if (tok) info.grammar_trie = std::make_shared<const TokenTrie>(MakeGrammarVocab(*tok));  // structured output
  info.created = server::UnixTime();
  a.http.host = a.host;
  a.http.port = a.port;
  a.http.log_requests = !a.quiet;
  server::HttpServer http(engine, info, a.http);
  const int port = http.Bind();
  if (!a.port_file.empty()) WriteFileAtomic(a.port_file, StrCat(port, "\n"));
  const server::ServerLimits& lim = a.http.limits;
  std::fprintf(stderr,
               "rgemma serve: model '%s' (%s, weights %s), %d threads, SIMD %s, %d slots, listening on http://%s:%d\n"
               "  limits: max_tokens %lld, prompt %lld tokens, body %zu bytes, n %d, queue %lld; state cache %zu MiB%s; "
               "CORS %s; log %s\n",
               info.id.c_str(), tok ? "with tokenizer" : "token ids only", WeightFormatSummary(*weights).c_str(),
               pool.size(), IsaName(ActiveIsa()), a.engine.parallel, a.host.c_str(), port, (long long)lim.max_tokens,
               (long long)lim.max_prompt_tokens, lim.max_body_bytes, lim.max_n, (long long)a.engine.max_queue,
               a.cache_mb, a.cache_dir.empty() ? "" : (" + " + a.cache_dir).c_str(), cors.Describe().c_str(),
               a.log_format.c_str());
  std::fflush(stderr);

  std::atomic<bool> exiting{false};
  std::thread drainer;
  std::thread signals([&] {
    int signals_seen = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (exiting.load()) return;
      if (sig == SIGUSR1) continue;
      if (++signals_seen == 1) {
        std::fprintf(stderr, "rgemma serve: %s: draining (%d in flight); send again to cancel them\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", http.in_flight());
        http.BeginDrain();
        engine.Drain(0);  // refuse new sequences from now on
        auto drain = [&] {
          if (!http.WaitIdle(a.drain_timeout)) {
            std::fprintf(stderr, "rgemma serve: drain timeout: cancelling what is left\n");
            engine.CancelAll();
            http.WaitIdle(10);
          }
          while (!http.finished()) {  // Stop() may race with Run() starting to listen
            http.Stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        };
        try {
          drainer = std::thread(drain);
        } catch (const std::system_error&) {
          drain();  // no thread to spare (ulimit -u): drain here; a second signal waits
        }
      } else {
        std::fprintf(stderr, "rgemma serve: cancelling in-flight requests\n");
        engine.CancelAll();
      }
    }
  });

  http.Run();
  exiting = true;
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  if (drainer.joinable()) drainer.join();
  const EngineStats s = engine.Stats();
  if (!a.quiet)
    std::fprintf(stderr, "rgemma serve: stopped (%llu sequences completed, %llu cancelled, %llu tokens generated)\n",
                 (unsigned long long)s.completed, (unsigned long long)s.cancelled,
                 (unsigned long long)s.generated_tokens);
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  AddModelFlags(cmd, &a->m);
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0 = any free port; see --port-file)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--port-file", a->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--alias", a->alias, "Model id reported by the API (default: the directory name)");
  cmd->add_option("--api-key", a->api_key,
                  "Require 'Authorization: Bearer KEY' on every route but /health and /tokenizer_info "
                  "(visible in ps: prefer --api-key-file or $RGEMMA_API_KEY)");
  cmd->add_option("--api-key-file", a->api_key_file, "Read the API key from this file (one line)")->check(NonEmpty);
  cmd->add_option("--parallel,-P", a->engine.parallel, "Sequences decoded together (state slots; llama.cpp's -np)")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--max-queue", a->engine.max_queue, "Sequences that may wait for a slot; more get 503")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20))->capture_default_str();
  cmd->add_option("--prefill-chunk", a->engine.prefill_chunk, "Prompt tokens run per step (bounds the others' stall)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16))->capture_default_str();
  cmd->add_option("--logits-chunk", a->engine.logits_chunk,
                  "Prompt tokens per step when every prompt token's log-probability is wanted (echo)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 12))->capture_default_str();
  cmd->add_option("--max-body-bytes", a->http.limits.max_body_bytes, "Larger request bodies get 413")
      ->check(CLI::Range(size_t(1024), size_t(1) << 34))->capture_default_str();
  cmd->add_option("--max-prompt-tokens", a->http.limits.max_prompt_tokens, "Longer prompts get 400")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--max-prompt-bytes", a->max_prompt_bytes,
                  "Prompt text over this many bytes gets 400 before it is tokenized (default: 16 per "
                  "--max-prompt-tokens)")
      ->check(CLI::Range(size_t(1), size_t(1) << 34));
  cmd->add_option("--max-tokens-limit", a->http.limits.max_tokens, "Largest max_tokens a request may ask for")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--default-chat-max-tokens", a->http.limits.default_chat_max_tokens,
                  "max_tokens of chat requests that give none")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--max-n", a->http.limits.max_n, "Largest n (choices per prompt)")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--max-logprobs", a->http.limits.max_logprobs, "Largest logprobs / top_logprobs")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  cmd->add_option("--max-connections", a->http.max_connections,
                  "Requests answered at once (threads); requests received beyond it wait")
      ->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--max-connections-per-ip", a->http.max_connections_per_ip,
                  "Open connections one client address may hold; more get 503 (0 = no cap)")
      ->check(CLI::Range(0, 1 << 20))->capture_default_str();
  cmd->add_option("--request-timeout", a->http.request_timeout_seconds,
                  "Seconds a request's head and body may take to arrive, from its first byte (then 408)")
      ->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  cmd->add_option("--drain-timeout", a->drain_timeout, "Seconds SIGTERM waits for in-flight requests")
      ->check(CLI::Range(0.0, 1e9))->capture_default_str();
  cmd->add_option("--cache-mb", a->cache_mb,
                  "State cache in memory, MiB (snapshots of conversations: a resent conversation prefills only "
                  "its new tokens; 0 = off)")
      ->check(CLI::Range(size_t(0), size_t(1) << 24))->capture_default_str();
  cmd->add_option("--cache-checkpoint-every", a->engine.checkpoint_every,
                  "Also snapshot long prompts every N tokens (0 = only at their ends)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--cache-dir", a->cache_dir, "Keep snapshots on disk here too (they survive a restart)");
  cmd->add_option("--cache-dir-mb", a->cache_dir_mb, "Disk space the cache directory may use, MiB")
      ->check(CLI::Range(size_t(1), size_t(1) << 30))->capture_default_str();
  cmd->add_option("--state-store", a->state_store,
                  "Share snapshots with other replicas in Redis: redis://HOST:PORT[/DB] (lookups: memory, then Redis)");
  cmd->add_option("--state-store-ttl", a->state_store_ttl, "Seconds a snapshot lives in the store (0 = no expiry)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--cors-origin", a->http.cors_origins,
                  "Web origins allowed to call this server from a browser, comma-separated (e.g. "
                  "http://localhost:3000; * = any); default none");
  cmd->add_option("--log-format", a->log_format, "Request log lines: text or json (one object per line)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", a->quiet, "No per-request log lines");
  cmd->callback([a] { RunServe(*a); });
}

}  // namespace rg::cli
