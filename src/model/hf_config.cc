#include "model/hf_config.h"

#include <cmath>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "io/json_fields.h"

namespace rg {
namespace {

using nlohmann::json;

// Field readers: each names the file and field, and what was expected.
class Fields {
 public:
  Fields(const json& j, const std::string& source) : j_(j), source_(source) {}

  const json* Get(const json& obj, const char* key) const { return FindField(obj, key); }

  int64_t Int(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    const json* v = Get(j_, key);
    if (!v) {
      RG_CHECK(fallback.has_value(), source_, ": missing required field '", key, "'");
      return *fallback;
    }
    const std::optional<int64_t> n = IntegerValue(*v);  // 2048.0 is fine, 2048.5 is not
    RG_CHECK(n.has_value(), source_, ": field '", key, "' must be an integer, got ", v->dump());
    return *n;
  }

  double Number(const json& obj, const char* key, double fallback) const {
    const json* v = Get(obj, key);
    if (!v) return fallback;
    RG_CHECK(v->is_number(), source_, ": field '", key, "' must be a number, got ", v->dump());
    return v->get<double>();
  }
  double Number(const char* key, double fallback) const { return Number(j_, key, fallback); }

  const json& root() const { return j_; }

 private:
  const json& j_;
  const std::string& source_;
};

std::vector<LayerKind> ReadBlockTypes(const json& j, int64_t num_layers, const std::string& source) {
  const char* key = j.contains("block_types") && !j["block_types"].is_null() ? "block_types" : "_block_types";
  RG_CHECK(j.contains(key) && !j[key].is_null(), source,
           ": missing 'block_types' (or '_block_types'): the list of recurrent/attention layers");
  const json& list = j[key];
  RG_CHECK(list.is_array() && !list.empty(), source, ": field '", key,
           "' must be a non-empty list of \"recurrent\"/\"attention\", got ", list.dump());
  std::vector<LayerKind> cycle;
  for (const json& e : list) {
    RG_CHECK(e.is_string(), source, ": field '", key, "' must hold strings, got ", e.dump());
    const std::string s = e.get<std::string>();
    if (s == "recurrent") cycle.push_back(LayerKind::kRecurrent);
    else if (s == "attention") cycle.push_back(LayerKind::kAttention);
    else Fail(source, ": field '", key, "' has unknown block type \"", s, "\" (expected recurrent or attention)");
  }
  // As HF's layers_block_type: the list repeats to cover num_hidden_layers
  // (the Hub gives the 3-entry cycle; a full per-layer list also works).
  std::vector<LayerKind> layers;
  for (int64_t i = 0; i < num_layers; ++i) layers.push_back(cycle[i % cycle.size()]);
  return layers;
}

}  // namespace

Config ParseHFConfig(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  RG_CHECK(!j.is_discarded(), source, ": not valid JSON");
  RG_CHECK(j.is_object(), source, ": expected a JSON object, got ", j.type_name());
  Fields f(j, source);

  const json* model_type = f.Get(j, "model_type");
  RG_CHECK(model_type && model_type->is_string(), source,
           ": missing 'model_type' (expected \"recurrent_gemma\")");
  RG_CHECK(model_type->get<std::string>() == "recurrent_gemma", source, ": model_type is \"",
           model_type->get<std::string>(), "\" but rgemma runs only \"recurrent_gemma\" (RecurrentGemma / Griffin)");

  if (const json* act = f.Get(j, "hidden_activation")) {
    RG_CHECK(act->is_string() && (act->get<std::string>() == "gelu_pytorch_tanh" ||
                                  act->get<std::string>() == "gelu_tanh"),
             source, ": hidden_activation ", act->dump(),
             " is not supported (RecurrentGemma uses \"gelu_pytorch_tanh\")");
  }

  Config c;
  c.vocab_size = f.Int("vocab_size");
  c.width = f.Int("hidden_size");
  const int64_t intermediate = f.Int("intermediate_size");
  RG_CHECK(intermediate > 0 && intermediate % 2 == 0, source,
           ": intermediate_size must be a positive even number (2 x the MLP width), got ", intermediate);
  c.mlp_width = intermediate / 2;
  c.num_heads = f.Int("num_attention_heads");
  RG_CHECK(c.num_heads > 0, source, ": num_attention_heads must be positive, got ", c.num_heads);
  const int64_t kv_heads = f.Int("num_key_value_heads", 1);
  RG_CHECK(kv_heads == 1, source, ": inconsistent head counts: num_key_value_heads is ", kv_heads,
           " but RecurrentGemma's local attention is multi-query (exactly 1 key/value head)");
  c.head_dim = f.Int("head_dim", c.width / c.num_heads);
  c.lru_width = f.Int("lru_width", c.width);
  c.conv_width = f.Int("conv1d_width", 4);
  c.attention_window = f.Int("attention_window_size");
  c.logits_soft_cap = float(f.Number("logits_soft_cap", 30.0));
  c.rms_norm_eps = float(f.Number("rms_norm_eps", 1e-6));

  // RoPE settings live top-level in older files and under rope_parameters in newer ones.
  double theta = f.Number("rope_theta", 10000.0);
  double partial = f.Number("partial_rotary_factor", 0.5);
  if (const json* rp = f.Get(j, "rope_parameters")) {
    RG_CHECK(rp->is_object(), source, ": field 'rope_parameters' must be an object, got ", rp->dump());
    theta = f.Number(*rp, "rope_theta", theta);
    partial = f.Number(*rp, "partial_rotary_factor", partial);
  }
  c.rope_theta = float(theta);
  c.partial_rotary_factor = float(partial);

  c.bos_id = int(f.Int("bos_token_id", 2));
  c.eos_id = int(f.Int("eos_token_id", 1));
  c.pad_id = int(f.Int("pad_token_id", 0));

  const int64_t num_layers = f.Int("num_hidden_layers");
  RG_CHECK(num_layers > 0 && num_layers <= 1024, source,
           ": num_hidden_layers must be in 1..1024, got ", num_layers);
  c.layers = ReadBlockTypes(j, num_layers, source);
  c.Validate(source);
  return c;
}

Config LoadHFConfig(const std::string& path) {
  return ParseHFConfig(ReadRegularFile(path, kMaxConfigBytes, "model config"), path);
}

std::string HFConfigJson(const Config& c, const std::string& torch_dtype) {
  nlohmann::ordered_json j;
  j["architectures"] = {"RecurrentGemmaForCausalLM"};
  j["attention_bias"] = false;
  j["attention_window_size"] = c.attention_window;
  // The Hub's 2b/9b files give the 3-entry cycle.
  std::vector<std::string> types;
  const size_t n = c.layers.size() >= 3 ? 3 : c.layers.size();
  for (size_t i = 0; i < n; ++i) types.push_back(LayerKindName(c.layers[i]));
  bool is_cycle = true;
  for (size_t i = 0; i < c.layers.size(); ++i) is_cycle &= c.layers[i] == c.layers[i % n];
  if (!is_cycle) {
    types.clear();
    for (LayerKind k : c.layers) types.push_back(LayerKindName(k));
  }
  j["block_types"] = types;
  j["bos_token_id"] = c.bos_id;
  j["conv1d_width"] = c.conv_width;
  j["embeddings_scale_by_sqrt_dim"] = true;
  j["eos_token_id"] = c.eos_id;
  j["final_w_init_variance_scale"] = 2.0 / double(c.num_layers());
  j["head_dim"] = c.head_dim;
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["hidden_size"] = c.width;
  j["intermediate_size"] = c.mlp_width * 2;
  j["logits_soft_cap"] = c.logits_soft_cap;
  j["lru_width"] = c.lru_width;
  j["model_type"] = "recurrent_gemma";
  j["num_attention_heads"] = c.num_heads;
  j["num_hidden_layers"] = c.num_layers();
  j["num_key_value_heads"] = 1;
  j["pad_token_id"] = c.pad_id;
  j["partial_rotary_factor"] = c.partial_rotary_factor;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["torch_dtype"] = torch_dtype;
  j["transformers_version"] = "4.40.0.dev0";
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  j["w_init_variance_scale"] = 0.01;
  return j.dump(2) + "\n";
}

}  // namespace rg
