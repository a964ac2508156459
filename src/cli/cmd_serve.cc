// rgemma serve: an OpenAI-compatible HTTP server with continuous batching.
//   rgemma serve -m DIR [--host 127.0.0.1] [--port 8080] [--parallel N]
// Endpoints: GET /health, GET /v1/models, POST /v1/completions,
// POST /v1/chat/completions (see src/server/http_server.h).
// SIGTERM / SIGINT: stop accepting, finish what is in flight, exit 0; a second
// signal cancels what is left.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "core/error.h"
#include "server/http_server.h"
#include "server/scheduler.h"

namespace rg::cli {
namespace {

struct ServeArgs {
  std::string model, tokenizer, host = "127.0.0.1", alias, port_file, api_key;
  int port = 8080;
  int threads = 0;
  bool quiet = false;
  double drain_timeout = 600;
  server::SchedulerOptions sched;
  server::HttpOptions http;
};

std::string ModelId(const ServeArgs& a) {
  if (!a.alias.empty()) return a.alias;
  std::filesystem::path p(a.model);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() || name == "." ? "rgemma" : name;
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

  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1" && !a.quiet)
    std::fprintf(stderr, "warning: listening on %s: reachable from other machines%s\n", a.host.c_str(),
                 a.api_key.empty() ? " and no --api-key is set" : "");

  ThreadPool pool(ResolveThreads(a.threads));
  auto weights = LoadModel(a.model, pool, a.quiet, /*show_progress=*/!a.quiet);
  const Config& c = weights->config;
  auto tok = LoadTokenizerFor(a.model, a.tokenizer, /*required=*/false);
  RG_CHECK(!tok || tok->vocab_size() <= c.vocab_size, "tokenizer has ", tok ? tok->vocab_size() : 0,
           " pieces but the model only ", c.vocab_size);
  if (!tok && !a.quiet)
    std::fprintf(stderr, "note: %s has no tokenizer.model: serving token ids only (text prompts get 400)\n",
                 a.model.c_str());

  a.sched.max_top_logprobs = a.http.limits.max_logprobs;
  server::Scheduler sched(weights, pool, a.sched);
  server::ModelInfo info;
  info.id = ModelId(a);
  info.config = &c;
  info.tokenizer = tok.get();
  info.created = server::UnixTime();
  a.http.host = a.host;
  a.http.port = a.port;
  a.http.api_key = a.api_key;
  a.http.log_requests = !a.quiet;
  server::HttpServer http(sched, info, a.http);
  const int port = http.Bind();
  if (!a.port_file.empty()) {
    const std::string tmp = a.port_file + ".tmp";
    {
      std::ofstream out(tmp);
      RG_CHECK(out, "--port-file: cannot write ", tmp);
      out << port << "\n";
    }
    std::filesystem::rename(tmp, a.port_file);
  }
  std::fprintf(stderr, "rgemma serve: model '%s' (%s), %d slots, listening on http://%s:%d\n", info.id.c_str(),
               tok ? "with tokenizer" : "token ids only", a.sched.parallel, a.host.c_str(), port);
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
        sched.Drain(0);  // refuse new sequences from now on
        drainer = std::thread([&] {
          if (!http.WaitIdle(a.drain_timeout)) {
            std::fprintf(stderr, "rgemma serve: drain timeout: cancelling what is left\n");
            sched.CancelAll();
            http.WaitIdle(10);
          }
          while (!http.finished()) {  // Stop() may race with Run() starting to listen
            http.Stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        });
      } else {
        std::fprintf(stderr, "rgemma serve: cancelling in-flight requests\n");
        sched.CancelAll();
      }
    }
  });

  http.Run();
  exiting = true;
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  if (drainer.joinable()) drainer.join();
  const server::SchedulerStats s = sched.Stats();
  if (!a.quiet)
    std::fprintf(stderr, "rgemma serve: stopped (%llu sequences completed, %llu cancelled, %llu tokens generated)\n",
                 (unsigned long long)s.completed, (unsigned long long)s.cancelled,
                 (unsigned long long)s.generated_tokens);
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  cmd->add_option("--model,-m", a->model, "Model directory")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model (default: the model directory's; none = ids only)");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0 = any free port; see --port-file)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--port-file", a->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--alias", a->alias, "Model id reported by the API (default: the directory name)");
  cmd->add_option("--api-key", a->api_key, "Require 'Authorization: Bearer KEY'");
  cmd->add_option("--parallel,-P", a->sched.parallel, "Sequences decoded together (state slots)")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--max-queue", a->sched.max_queue, "Sequences that may wait for a slot; more get 503")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20))->capture_default_str();
  cmd->add_option("--prefill-chunk", a->sched.prefill_chunk, "Prompt tokens run per step (bounds the others' stall)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16))->capture_default_str();
  cmd->add_option("--logits-chunk", a->sched.logits_chunk,
                  "Prompt tokens per step when every prompt token's log-probability is wanted (echo)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 12))->capture_default_str();
  cmd->add_option("--max-body-bytes", a->http.limits.max_body_bytes, "Larger request bodies get 413")
      ->check(CLI::Range(size_t(1024), size_t(1) << 34))->capture_default_str();
  cmd->add_option("--max-prompt-tokens", a->http.limits.max_prompt_tokens, "Longer prompts get 400")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--max-tokens-limit", a->http.limits.max_tokens, "Largest max_tokens a request may ask for")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--default-chat-max-tokens", a->http.limits.default_chat_max_tokens,
                  "max_tokens of chat requests that give none")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str();
  cmd->add_option("--max-n", a->http.limits.max_n, "Largest n (choices per prompt)")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--max-logprobs", a->http.limits.max_logprobs, "Largest logprobs / top_logprobs")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  cmd->add_option("--max-connections", a->http.max_connections, "Connection threads")
      ->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--drain-timeout", a->drain_timeout, "Seconds SIGTERM waits for in-flight requests")
      ->check(CLI::Range(0.0, 1e9))->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "Compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--quiet,-q", a->quiet, "No per-request log lines");
  cmd->callback([a] { RunServe(*a); });
}

}  // namespace rg::cli
