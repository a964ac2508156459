// rgemma bench -m DIR [--prompt-tokens 512] [--gen-tokens 128] [--threads N]
//              [--batch B] [--reps R] [--json] [--weights FMT] [--precision exact|fast]
// Load time, prefill and decode speed (median of reps), batched decode, peak
// RSS, and how close each is to this machine's limits measured in the same
// run: decode against a streaming read of a hugepage-backed buffer (GB/s of
// weights per token), prefill against the peak of the products it runs (int8
// vpdpbusd for quantized weights, vdpbf16ps for bf16 with --precision fast,
// else f32 FMA), by wall time and per CPU-second used (*_cpu_* fields: robust
// when other jobs share the cores).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/precision_flag.h"
#include "cli/progress.h"
#include "core/error.h"
#include "generate/session.h"
#include "model/weight_convert.h"
#include "ops/cpu_features.h"
#include "ops/matmul.h"
#include "ops/membw.h"
#include "ops/quant.h"

namespace rg::cli {
namespace {

struct BenchArgs {
  std::string model, weights, precision = "exact";
  int64_t prompt_tokens = 512, gen_tokens = 128, batch = 1, chunk = 0;  // chunk 0: DefaultPrefillChunk
  int threads = 0, reps = 3;
  bool json = false, mmap = false;
};

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int32_t ArgMax(const float* x, int64_t n) { return int32_t(std::max_element(x, x + n) - x); }

// Operations per prompt token: 2 per multiply-add of every matrix a token
// reads (ForEachDecodeMatrix, RG-LRU gate blocks included) except the output
// head, which a prompt needs for its last token only.
double PrefillFlopsPerToken(const Weights& w) {
  double macs = 0;
  w.ForEachDecodeMatrix([&](const WeightMatrix& m) { macs += double(m.rows) * double(m.cols); });
  return 2 * (macs - double(w.lm_head.rows) * double(w.lm_head.cols));
}

// One timed streaming read of every matrix decode reads (the same memory,
// same huge pages), split across the pool.
double ReadWeightsSeconds(ThreadPool& pool, const Weights& w) {
  double seconds = 0;
  w.ForEachDecodeMatrix([&](const WeightMatrix& m) { seconds += StreamingReadSeconds(pool, m.data, WeightMatrixBytes(m)); });
  return seconds;
}

void RunBench(const BenchArgs& a) {
  ThreadPool pool(ResolveThreads(a.threads));
  LoadOptions opt;
  opt.pool = &pool;
  opt.copy_to_huge_pages = !(a.mmap || MmapOnlyRequested());
  if (!a.weights.empty()) opt.matrix_format = ParseWeightFormat(a.weights);
  Progress progress("loading " + a.model, 1, /*show_after_s=*/1.0);
  opt.progress = [&](size_t done, size_t total) { progress.Set(done, total); };
  auto t0 = Clock::now();
  auto weights = Weights::Load(a.model, opt);
  const double load_s = Since(t0);
  progress.Done();
  const Config& c = weights->config;
  const int64_t V = c.vocab_size;

  std::mt19937 rng(1);
  std::vector<int32_t> prompt(size_t(a.prompt_tokens));
  prompt[0] = c.bos_id;
  for (size_t i = 1; i < prompt.size(); ++i) prompt[i] = int32_t(3 + rng() % uint32_t(V - 3));

  // Decode is timed in segments of kSegment tokens, each followed by one
  // timed streaming read of the same weights. This VM's memory bandwidth
  // drifts between ~34 and ~60 GB/s within seconds (neighbours, placement),
  // so the roofline is the read bandwidth measured interleaved with decode,
  // over the same stretch of time: all reads' bytes / all reads' seconds.
  constexpr int64_t kSegment = 8;
  const double bytes_per_token = double(weights->matrix_bytes_per_token());
  std::vector<double> prefill, decode;
  std::vector<double> prefill_cpu;  // process CPU seconds per prefill
  double read_bytes = 0, read_seconds = 0;
  const KernelOptions kernel_options = KernelOptionsFor(a.precision);
  const int64_t chunk = a.chunk > 0 ? a.chunk : DefaultPrefillChunk(*weights);
  Session session(weights, pool, std::min(chunk, a.prompt_tokens), kernel_options);
  for (int r = 0; r < a.reps; ++r) {
    session.Reset();
    t0 = Clock::now();
    const double c0 = ProcessCpuSeconds();
    const float* logits = session.Prefill(prompt);
    prefill.push_back(double(prompt.size()) / Since(t0));
    prefill_cpu.push_back(ProcessCpuSeconds() - c0);
    double decode_s = 0;
    for (int64_t i = 0; i < a.gen_tokens; i += kSegment) {
      const int64_t n = std::min(kSegment, a.gen_tokens - i);
      t0 = Clock::now();
      for (int64_t k = 0; k < n; ++k) logits = session.Step(ArgMax(logits, V));
      const double segment_s = Since(t0);
      decode_s += segment_s;
      read_seconds += ReadWeightsSeconds(pool, *weights);
      read_bytes += bytes_per_token;
    }
    decode.push_back(double(a.gen_tokens) / decode_s);
  }

  // Batched decode: `batch` sequences, one token each per Forward, one pass over the weights.
  double batch_tok_s = 0;
  if (a.batch > 1) {
    std::vector<State> states;
    for (int64_t b = 0; b < a.batch; ++b) states.emplace_back(c);
    Scratch scratch(c, a.batch, pool, kernel_options);
    std::vector<float> logits(size_t(a.batch * V));
    std::vector<int32_t> tokens(size_t(a.batch));
    std::vector<SeqChunk> chunks;
    for (int64_t b = 0; b < a.batch; ++b) {
      tokens[b] = int32_t(3 + b);
      chunks.push_back({&states[b], &tokens[b], 1, LogitsWanted::kLast});
    }
    std::vector<double> rates;
    for (int r = 0; r < a.reps; ++r) {
      const int64_t steps = std::max<int64_t>(4, a.gen_tokens / 4);
      t0 = Clock::now();
      for (int64_t s = 0; s < steps; ++s) {
        Forward(*weights, chunks, scratch, logits.data());
        for (int64_t b = 0; b < a.batch; ++b) tokens[b] = ArgMax(logits.data() + b * V, V);
      }
      rates.push_back(double(steps * a.batch) / Since(t0));
    }
    batch_tok_s = Median(rates);
  }
  const size_t peak_rss = PeakRssBytes();  // before the bandwidth probe allocates its buffer

  // The machine's figure (a fresh 1 GiB hugepage buffer) is reported too;
  // the roofline is the interleaved read of the weights themselves.
  const double probe_bandwidth = MeasureReadBandwidthGBs(pool);
  const double bandwidth = read_bytes / read_seconds / 1e9;
  double peak_gflops_cpu = 0, peak_int8_gops_cpu = 0, peak_bf16_gflops_cpu = 0;
  const double peak_gflops = MeasurePeakGflops(pool, &peak_gflops_cpu);
  const double peak_int8_gops = MeasurePeakInt8Gops(pool, &peak_int8_gops_cpu);
  const double peak_bf16_gflops = MeasurePeakBf16Gflops(pool, &peak_bf16_gflops_cpu);
  // The peak of the products prefill runs: int8 dot for quantized weights,
  // bf16 dot for bf16 weights in fast mode, else f32 FMA.
  const bool int8 = IsQuantizedFormat(weights->layers[0].mlp.gate.format);
  const bool bf16_dot = kernel_options.precision == MatMulPrecision::kFast &&
                        weights->layers[0].mlp.gate.format == WeightFormat::BF16 && peak_bf16_gflops > 0;
  const double prefill_peak = int8 && peak_int8_gops > 0 ? peak_int8_gops : bf16_dot ? peak_bf16_gflops : peak_gflops;
  const double prefill_tok_s = Median(prefill), decode_tok_s = Median(decode);
  // The same per CPU-second the process used (x threads): what the cores
  // deliver while they run, robust to other jobs sharing them (spin-waits of
  // the pool count as used, so it errs low).
  const double prefill_peak_cpu =
      int8 && peak_int8_gops_cpu > 0 ? peak_int8_gops_cpu : bf16_dot ? peak_bf16_gflops_cpu : peak_gflops_cpu;
  const double prefill_cpu_gflops =
      PrefillFlopsPerToken(*weights) * double(prompt.size()) / (Median(prefill_cpu) / pool.size()) / 1e9;
  const double decode_gb_s = bytes_per_token * decode_tok_s / 1e9;
  const double prefill_gflops = PrefillFlopsPerToken(*weights) * prefill_tok_s / 1e9;
  const char* format = WeightFormatName(weights->layers[0].mlp.gate.format);

  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["weights_format"] = format;
  j["precision"] = a.precision;
  j["prefill_chunk"] = std::min(chunk, a.prompt_tokens);
  j["isa"] = IsaName(ActiveIsa());
  j["threads"] = pool.size();
  j["prompt_tokens"] = a.prompt_tokens;
  j["gen_tokens"] = a.gen_tokens;
  j["reps"] = a.reps;
  j["load_s"] = load_s;
  j["weights_in_huge_pages"] = opt.copy_to_huge_pages;
  j["prefill_tok_s"] = prefill_tok_s;
  j["decode_tok_s"] = decode_tok_s;
  j["batch"] = a.batch;
  j["batch_decode_tok_s"] = a.batch > 1 ? batch_tok_s : decode_tok_s;
  j["batch_speedup"] = a.batch > 1 ? batch_tok_s / decode_tok_s : 1.0;
  j["peak_rss_bytes"] = peak_rss;
  j["weight_bytes_per_token"] = size_t(bytes_per_token);
  j["state_bytes"] = session.state().bytes();
  j["measured_bandwidth_gb_s"] = bandwidth;
  j["probe_bandwidth_gb_s"] = probe_bandwidth;
  j["decode_gb_s"] = decode_gb_s;
  j["decode_fraction_of_bandwidth"] = decode_gb_s / bandwidth;
  j["prefill_gflops"] = prefill_gflops;
  j["measured_peak_gflops"] = peak_gflops;
  j["measured_peak_int8_gops"] = peak_int8_gops;
  j["measured_peak_bf16_gflops"] = peak_bf16_gflops;
  j["prefill_peak_kind"] = int8 && peak_int8_gops > 0 ? "int8" : bf16_dot ? "bf16" : "f32";
  j["prefill_fraction_of_peak"] = prefill_gflops / prefill_peak;
  j["prefill_cpu_gflops"] = prefill_cpu_gflops;
  j["measured_peak_cpu_gflops"] = peak_gflops_cpu;
  j["measured_peak_int8_cpu_gops"] = peak_int8_gops_cpu;
  j["measured_peak_bf16_cpu_gflops"] = peak_bf16_gflops_cpu;
  j["prefill_cpu_fraction_of_peak"] = prefill_cpu_gflops / prefill_peak_cpu;
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("model          %s (%s weights, %s, %d threads)\n", a.model.c_str(), format, IsaName(ActiveIsa()),
              pool.size());
  std::printf("load           %.3f s\n", load_s);
  std::printf("prefill        %.1f tok/s  (%lld-token prompt; %.0f G%s/s = %.0f%% of the measured %.0f G%s/s%s peak)\n",
              prefill_tok_s, (long long)a.prompt_tokens, prefill_gflops, int8 ? "OP" : "FLOP",
              100 * prefill_gflops / prefill_peak, prefill_peak, int8 ? "OP" : "FLOP",
              int8 && peak_int8_gops > 0 ? " int8 VNNI" : bf16_dot ? " bf16 dot" : " f32 FMA");
  std::printf("decode         %.2f tok/s  (%.2f GB of weights per token = %.1f GB/s; %.0f%% of the %.1f GB/s read bandwidth of the weights, measured between decode segments)\n",
              decode_tok_s, bytes_per_token / 1e9, decode_gb_s, 100 * decode_gb_s / bandwidth, bandwidth);
  std::printf("               (a fresh 1 GiB hugepage buffer reads at %.1f GB/s)\n", probe_bandwidth);
  if (a.batch > 1)
    std::printf("batched decode %.2f tok/s aggregate over %lld sequences (%.1fx single-stream)\n", batch_tok_s,
                (long long)a.batch, batch_tok_s / decode_tok_s);
  std::printf("peak RSS       %.2f GiB (weights %.2f GiB + state %.1f MiB per sequence)\n",
              double(peak_rss) / (1 << 30), bytes_per_token / (1 << 30), double(session.state().bytes()) / (1 << 20));
}

}  // namespace

void RegisterBench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure load, prefill and decode speed against this machine's limits");
  AddModelDirFlag(cmd, &a->model, "Model directory")->required();
  cmd->add_option("--prompt-tokens,-p", a->prompt_tokens, "Prompt length")->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  cmd->add_option("--gen-tokens,-n", a->gen_tokens, "Tokens to decode")->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  AddThreadsFlag(cmd, &a->threads);
  cmd->add_option("--batch,-b", a->batch, "Sequences decoded together in the batched run")->check(CLI::Range(int64_t(1), int64_t(4096)))->capture_default_str();
  cmd->add_option("--reps,-r", a->reps, "Repetitions (the median is reported)")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "Rows per prefill pass (default: 256 for int8 weights, else 128)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  cmd->add_option("--weights", a->weights, "Convert matrices at load: bf16, q8, q4, q8_256, q4_256 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "int8", "q4", "q8_256", "q4_256"}));
  AddPrecisionFlag(cmd, &a->precision);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_flag("--mmap", a->mmap, "Zero-copy weights in the file mapping (default: copied into huge pages)");
  cmd->callback([a] { RunBench(*a); });
}

}  // namespace rg::cli
