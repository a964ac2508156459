#include "generate/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace rg {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStopToken: return "stop";
    case FinishReason::kCallback: return "stop";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "?";
}

FinishReason GenerateTokens(Session& session, Sampler& sampler, std::span<const int32_t> prompt,
                            const StopConditions& stop, const TokenCallback& on_token,
                            GenerationStats* stats) {
  using Clock = std::chrono::steady_clock;
  GenerationStats local;
  GenerationStats& st = stats ? *stats : local;
  st = GenerationStats{};
  st.prompt_tokens = int64_t(prompt.size());
  const Config& c = session.config();
  auto cancelled = [&] { return stop.cancel && stop.cancel->load(std::memory_order_relaxed); };

  const auto t0 = Clock::now();
  for (int32_t id : prompt) sampler.Accept(id);
  const float* logits = prompt.empty() ? session.logits() : session.Prefill(prompt);
  RG_CHECK(!prompt.empty() || session.pos() > 0, "generate: empty prompt and nothing to continue from");
  auto t_first = Clock::now();
  st.prefill_seconds = std::chrono::duration<double>(t_first - t0).count();

  FinishReason reason = FinishReason::kLength;
  for (int64_t i = 0; i < stop.max_tokens; ++i) {
    if (cancelled()) {
      reason = FinishReason::kCancelled;
      break;
    }
    const int32_t next = sampler.Sample(logits);
    const bool is_stop = (!stop.ignore_eos && next == c.eos_id) ||
                         std::find(stop.stop_ids.begin(), stop.stop_ids.end(), next) != stop.stop_ids.end();
    if (is_stop) {
      st.stop_token = next;
      reason = FinishReason::kStopToken;
      break;
    }
    sampler.Accept(next);
    ++st.generated_tokens;
    const bool go_on = on_token(next);
    const bool last = !go_on || i + 1 == stop.max_tokens;
    if (!last || stop.feed_last) logits = session.Step(next);
    if (!go_on) {
      reason = FinishReason::kCallback;
      break;
    }
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t_first).count();
  return reason;
}

}  // namespace rg
