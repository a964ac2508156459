#include "server/metrics.h"

#include <cstdio>

namespace rg::server {

void Metrics::CountRequest(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++requests_[{endpoint, status}];
}

namespace {

// Appends one metric family: # HELP, # TYPE, then its samples.
class Exposition {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP rgemma_" + std::string(name) + " " + help + "\n";
    out_ += "# TYPE rgemma_" + std::string(name) + " " + type + "\n";
    name_ = name;
  }
  // A sample of the current family; labels: `key="value",...` or empty.
  void Sample(double value, const std::string& labels = {}) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out_ += "rgemma_" + name_ + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
  }
  void One(const char* name, const char* type, const char* help, double value) {
    Family(name, type, help);
    Sample(value);
  }
  std::string& text() { return out_; }

 private:
  std::string out_, name_;
};

double Ratio(double num, double den) { return den > 0 ? num / den : 0; }

}  // namespace

std::string Metrics::Render(const EngineStats& e, const StateCacheStats* c, int in_flight) const {
  Exposition x;
  x.Family("requests_total", "counter", "HTTP requests answered, by endpoint and status (499: the client went away).");
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [key, n] : requests_)
      x.Sample(double(n), "endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"");
  }
  x.One("requests_in_flight", "gauge", "Generation requests accepted and not yet fully answered.", in_flight);

  x.One("prompt_tokens_total", "counter", "Prompt tokens run through the model.", double(e.prompt_tokens));
  x.One("cached_tokens_total", "counter", "Prompt tokens restored from the state cache instead of being run.",
        double(e.cached_tokens));
  x.One("generated_tokens_total", "counter", "Tokens generated.", double(e.generated_tokens));
  x.One("prefill_tokens_per_second", "gauge",
        "Prefill speed one sequence sees: prompt tokens run / time from its slot to its first token, over finished "
        "sequences.",
        Ratio(double(e.prefill_tokens), e.prefill_seconds));
  x.One("decode_tokens_per_second", "gauge",
        "Decode speed one sequence sees: tokens after the first / time from the first token to the end, over finished "
        "sequences.",
        Ratio(double(e.decode_tokens), e.decode_seconds));
  x.One("prefill_seconds_total", "counter", "Prefill time summed over finished sequences.", e.prefill_seconds);
  x.One("decode_seconds_total", "counter", "Decode time summed over finished sequences.", e.decode_seconds);

  x.One("queue_depth", "gauge", "Sequences waiting for a slot.", double(e.queued));
  x.One("queue_capacity", "gauge", "Sequences that may wait for a slot (--max-queue).", double(e.max_queue));
  x.One("slots_busy", "gauge", "State slots running a sequence.", e.slots_busy);
  x.One("slots_total", "gauge", "State slots (--parallel).", e.slots_total);
  x.Family("sequences_total", "counter", "Sequences by outcome.");
  x.Sample(double(e.completed), "outcome=\"completed\"");
  x.Sample(double(e.cancelled), "outcome=\"cancelled\"");
  x.Sample(double(e.errors), "outcome=\"error\"");
  x.Sample(double(e.rejected), "outcome=\"rejected\"");
  x.One("steps_total", "counter", "Batched model steps (Forward calls).", double(e.steps));
  x.One("busy_seconds_total", "counter", "Time spent in model steps.", e.busy_seconds);

  if (c) {
    x.One("cache_lookups_total", "counter", "State cache lookups in memory.", double(c->lookups));
    x.One("cache_hits_total", "counter", "State cache lookups that found a snapshot.", double(c->hits));
    x.One("cache_misses_total", "counter", "State cache lookups that found none.", double(c->lookups - c->hits));
    x.One("cache_hit_tokens_total", "counter", "Prompt tokens covered by state cache hits.", double(c->hit_tokens));
    x.One("cache_entries", "gauge", "Snapshots in the state cache's memory.", double(c->entries));
    x.One("cache_bytes", "gauge", "Bytes the state cache's snapshots take in memory.", double(c->bytes));
    x.One("cache_budget_bytes", "gauge", "The state cache's memory budget (--cache-mb).", double(c->budget_bytes));
    x.One("cache_evictions_total", "counter", "Snapshots evicted from memory.", double(c->evictions));
    x.One("cache_store_fetches_total", "counter", "Lookups in the slower stores (disk, ...).", double(c->store_fetches));
    x.One("cache_store_hits_total", "counter", "Store lookups that found a snapshot.", double(c->store_hits));
  }
  return std::move(x.text());
}

}  // namespace rg::server
