// Loading Hugging Face model directories: every accepted spelling of the
// config, and a clear one-line error for every inconsistent input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "load_error.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "generate/session.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace rg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kTiny = std::string(RG_TEST_DATA) + "/fixtures/tiny";

std::string ReadText(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A writable copy of a fixture model whose tensors and config can be edited.
class ModelDir {
 public:
  explicit ModelDir(const std::string& src = kTiny) {
    static int counter = 0;
    dir = (fs::temp_directory_path() / ("rg_model_test_" + std::to_string(getpid()) + "_" +
                                        std::to_string(counter++))).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
    config = json::parse(ReadText(src + "/config.json"));
    auto file = SafetensorsFile::Open(src + "/model.safetensors");
    for (const TensorView& tv : file->tensors()) {
      const auto* p = static_cast<const uint8_t*>(tv.data);
      tensors.push_back({tv.name, tv.dtype, tv.shape, std::vector<uint8_t>(p, p + tv.nbytes)});
    }
  }
  ~ModelDir() { fs::remove_all(dir); }

  struct T {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  T* Find(const std::string& name) {
    for (T& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  void Remove(const std::string& name) {
    std::erase_if(tensors, [&](const T& t) { return t.name == name; });
  }

  // Writes config.json and the tensors, as one file or as `shards` shards + index.
  void Write(int shards = 1) {
    std::ofstream(dir + "/config.json") << config.dump(2);
    std::vector<std::vector<TensorToWrite>> parts(static_cast<size_t>(shards));
    json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
    for (size_t i = 0; i < tensors.size(); ++i) {
      const T& t = tensors[i];
      parts[i % size_t(shards)].push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
      index["weight_map"][t.name] = ShardName(int(i % size_t(shards)), shards);
    }
    if (shards == 1) {
      WriteSafetensors(dir + "/model.safetensors", parts[0]);
      return;
    }
    for (int s = 0; s < shards; ++s) WriteSafetensors(dir + "/" + ShardName(s, shards), parts[size_t(s)]);
    std::ofstream(dir + "/model.safetensors.index.json") << index.dump(2);
  }
  static std::string ShardName(int s, int n) {
    return "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(n) + ".safetensors";
  }

  std::string dir;
  json config;
  std::vector<T> tensors;
};

// Logits of a fixed prompt, to check that two spellings load the same model.
std::vector<float> LogitsOf(const std::string& dir) {
  ThreadPool pool(1);
  Session s(Weights::Load(dir), pool);
  const float* l = s.Prefill(std::vector<int32_t>{2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  return std::vector<float>(l, l + s.config().vocab_size);
}

// ---- config.json spellings found on the Hub

TEST(ModelLoad, HubConfigSpellingsLoadTheSameModel) {
  const std::vector<float> expect = LogitsOf(kTiny);
  auto variant = [&](auto edit) {
    ModelDir m;
    edit(m.config);
    m.Write();
    return LogitsOf(m.dir);
  };
  EXPECT_EQ(variant([](json& c) { c["_block_types"] = c["block_types"]; c.erase("block_types"); }), expect);
  EXPECT_EQ(variant([](json& c) { c["block_types"] = {"recurrent", "recurrent", "attention"}; }), expect);
  EXPECT_EQ(variant([](json& c) { c["lru_width"] = nullptr; }), expect);  // tiny: lru_width == hidden
  EXPECT_EQ(variant([](json& c) { c.erase("head_dim"); }), expect);
  EXPECT_EQ(variant([](json& c) {
              c["rope_parameters"] = {{"rope_theta", c["rope_theta"]}, {"partial_rotary_factor", 0.5}};
              c.erase("rope_theta");
              c.erase("partial_rotary_factor");
            }),
            expect);
  EXPECT_EQ(variant([](json& c) { c["attention_window_size"] = 8.0; }), expect);
}

TEST(ModelLoad, SoftCapIsReadFromTheFile) {
  ModelDir m;
  m.config["logits_soft_cap"] = 0.0;
  m.Write();
  const std::vector<float> uncapped = LogitsOf(m.dir);
  const std::vector<float> capped = LogitsOf(kTiny);
  float max_uncapped = 0, max_capped = 0;
  for (size_t i = 0; i < capped.size(); ++i) {
    max_uncapped = std::max(max_uncapped, std::fabs(uncapped[i]));
    max_capped = std::max(max_capped, std::fabs(capped[i]));
    ASSERT_NEAR(capped[i], 30.f * std::tanh(uncapped[i] / 30.f), 1e-3f);
  }
  EXPECT_LT(max_capped, 30.f);
  EXPECT_NE(max_uncapped, max_capped);
}

TEST(ModelLoad, ExplicitLmHeadEqualToEmbeddingGivesTiedLogits) {
  ModelDir m;
  ModelDir::T head = *m.Find("model.embed_tokens.weight");
  head.name = "lm_head.weight";
  m.tensors.push_back(head);
  m.Write();
  EXPECT_EQ(LogitsOf(m.dir), LogitsOf(kTiny));
  EXPECT_FALSE(Weights::Load(m.dir)->tied_lm_head);
}

TEST(ModelLoad, ShardedCheckpointLoadsTheSameModel) {
  ModelDir m;
  m.Write(/*shards=*/3);
  EXPECT_EQ(LogitsOf(m.dir), LogitsOf(kTiny));
}

TEST(ModelLoad, F16WeightsAreWidened) {
  ModelDir m;
  for (ModelDir::T& t : m.tensors) {
    std::vector<uint8_t> half(t.bytes.size() / 2);
    const float* f = reinterpret_cast<const float*>(t.bytes.data());
    for (size_t i = 0; i < half.size() / 2; ++i) {
      // Round-trip through _Float16 (g++ 12 supports it on x86-64).
      _Float16 h = static_cast<_Float16>(f[i]);
      std::memcpy(half.data() + 2 * i, &h, 2);
    }
    t.bytes = half;
    t.dtype = DType::F16;
  }
  m.Write();
  auto a = LogitsOf(m.dir), b = LogitsOf(kTiny);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  EXPECT_LT(worst, 0.5) << "f16 rounding of the weights moves logits only slightly";
  EXPECT_GT(worst, 0.0) << "f16 weights were not used";
}

// ---- bad inputs: one clear error each

TEST(ModelLoad, UnknownModelType) {
  ModelDir m;
  m.config["model_type"] = "gemma";
  m.Write();
  EXPECT_THAT(LoadError(m.dir), HasSubstr("model_type is \"gemma\""));
}

TEST(ModelLoad, InconsistentHeadCounts) {
  {
    ModelDir m;
    m.config["num_key_value_heads"] = 2;
    m.Write();
    EXPECT_THAT(LoadError(m.dir), HasSubstr("inconsistent head counts: num_key_value_heads is 2"));
  }
  {
    ModelDir m;
    m.config["head_dim"] = 32;  // 4 heads x 32 != 64
    m.Write();
    EXPECT_THAT(LoadError(m.dir), HasSubstr("inconsistent head counts"));
  }
  {
    ModelDir m;
    m.config["num_attention_heads"] = 3;  // lru_width 64 is not divisible by 3
    m.config.erase("head_dim");
    m.Write();
    EXPECT_THAT(LoadError(m.dir), HasSubstr("config.json"));
  }
}

TEST(ModelLoad, BadConfigJson) {
  ModelDir m;
  m.Write();
  std::ofstream(m.dir + "/config.json") << "{\"model_type\": \"recurrent_gemma\", ";
  EXPECT_THAT(LoadError(m.dir), HasSubstr("config.json: not valid JSON"));
  std::ofstream(m.dir + "/config.json") << "[1, 2]";
  EXPECT_THAT(LoadError(m.dir), HasSubstr("expected a JSON object"));
}

TEST(ModelLoad, BadConfigFields) {
  auto error_with = [](auto edit) {
    ModelDir m;
    edit(m.config);
    m.Write();
    return LoadError(m.dir);
  };
  EXPECT_THAT(error_with([](json& c) { c.erase("hidden_size"); }), HasSubstr("missing required field 'hidden_size'"));
  EXPECT_THAT(error_with([](json& c) { c["hidden_size"] = "64"; }), HasSubstr("'hidden_size' must be an integer"));
  EXPECT_THAT(error_with([](json& c) { c["intermediate_size"] = 385; }), HasSubstr("intermediate_size"));
  EXPECT_THAT(error_with([](json& c) { c["block_types"] = {"recurrent", "mamba"}; }), HasSubstr("unknown block type \"mamba\""));
  EXPECT_THAT(error_with([](json& c) { c.erase("block_types"); }), HasSubstr("missing 'block_types'"));
  EXPECT_THAT(error_with([](json& c) { c["vocab_size"] = -5; }), HasSubstr("vocab_size"));
  EXPECT_THAT(error_with([](json& c) { c["hidden_size"] = int64_t(1) << 40; }), HasSubstr("implausibly large"));
  EXPECT_THAT(error_with([](json& c) { c["logits_soft_cap"] = -1; }), HasSubstr("logits_soft_cap"));
  EXPECT_THAT(error_with([](json& c) { c["hidden_activation"] = "relu"; }), HasSubstr("hidden_activation"));
}

TEST(ModelLoad, MissingConfig) {
  ModelDir m;
  m.Write();
  fs::remove(m.dir + "/config.json");
  EXPECT_THAT(LoadError(m.dir), HasSubstr("config.json: cannot open"));
}

TEST(ModelLoad, MissingTensor) {
  ModelDir m;
  m.Remove("model.layers.1.temporal_block.rg_lru.input_gate_bias");
  m.Write();
  EXPECT_THAT(LoadError(m.dir),
              HasSubstr("missing tensor 'model.layers.1.temporal_block.rg_lru.input_gate_bias' (expected shape [4, 16])"));
}

TEST(ModelLoad, UnexpectedExtraTensor) {
  ModelDir m;
  ModelDir::T extra = *m.Find("model.final_norm.weight");
  extra.name = "model.layers.3.channel_pre_norm.weight";  // tiny has 3 layers
  m.tensors.push_back(extra);
  m.Write();
  EXPECT_THAT(LoadError(m.dir), HasSubstr("unexpected tensor 'model.layers.3.channel_pre_norm.weight'"));
}

TEST(ModelLoad, WrongShapeVsConfig) {
  ModelDir m;
  ModelDir::T* t = m.Find("model.layers.0.temporal_block.linear_x.weight");
  t->shape = {32, 128};  // same bytes as [64, 64]
  m.Write();
  EXPECT_THAT(LoadError(m.dir), HasSubstr("tensor 'model.layers.0.temporal_block.linear_x.weight' has shape [32, 128] "
                                          "but config.json implies [64, 64]"));
}

TEST(ModelLoad, ConfigDisagreeingWithTensors) {
  ModelDir m;
  m.config["num_hidden_layers"] = 4;  // a 4th layer's tensors are absent
  m.Write();
  EXPECT_THAT(LoadError(m.dir), HasSubstr("missing tensor 'model.layers.3."));
}

TEST(ModelLoad, IntegerWeightsAreRejected) {
  ModelDir m;
  m.Find("model.final_norm.weight")->dtype = DType::I32;
  m.Write();
  EXPECT_THAT(LoadError(m.dir), HasSubstr("'model.final_norm.weight' has dtype I32; expected F32, BF16 or F16"));
}

TEST(ModelLoad, ShardListedInIndexButMissing) {
  ModelDir m;
  m.Write(/*shards=*/2);
  fs::remove(m.dir + "/" + ModelDir::ShardName(1, 2));
  EXPECT_THAT(LoadError(m.dir), HasSubstr(ModelDir::ShardName(1, 2)));
}

TEST(ModelLoad, NoWeightsAtAll) {
  ModelDir m;
  m.Write();
  fs::remove(m.dir + "/model.safetensors");
  EXPECT_THAT(LoadError(m.dir), HasSubstr("model.safetensors"));
}

TEST(ModelLoad, TruncatedWeightsFile) {
  ModelDir m;
  m.Write();
  fs::resize_file(m.dir + "/model.safetensors", fs::file_size(m.dir + "/model.safetensors") - 100);
  EXPECT_THAT(LoadError(m.dir), HasSubstr("model.safetensors"));
}

}  // namespace
}  // namespace rg

namespace rg {
namespace {

// The decode cost from the tensor table, against the count by hand: the
// output head (tied: the embedding), every layer's matrices and the RG-LRU
// gate blocks, all f32 in this fixture.
TEST(ModelLoad, DecodeMatricesAreTheOutputHeadLayerMatricesAndGateBlocks) {
  auto w = Weights::Load(kTiny);
  const Config& c = w->config;
  const int64_t V = c.vocab_size, D = c.width, M = c.mlp_width, L = c.lru_width, H = c.num_heads;
  const int64_t b = c.lru_block_width(), Dq = c.num_heads * c.head_dim, h = c.head_dim;
  int64_t floats = V * D;
  for (LayerKind k : c.layers) {
    floats += k == LayerKind::kRecurrent ? 3 * L * D + 2 * H * b * b : Dq * D + 2 * h * D + D * Dq;
    floats += 3 * M * D;
  }
  int matrices = 0;
  w->ForEachDecodeMatrix([&](const WeightMatrix&) { ++matrices; });
  EXPECT_EQ(w->matrix_bytes_per_token(), size_t(floats) * 4);
  EXPECT_EQ(matrices, 1 + 8 * 2 + 7 * 1);  // tiny: R, R, A
}

}  // namespace
}  // namespace rg
