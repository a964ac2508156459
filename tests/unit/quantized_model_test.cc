// Quantized model directories (`rgemma quantize`, model/weight_convert.h):
// the q4 mix keeps the embedding / output head at q8, quantizing at load gives
// the same model as quantizing to disk, and the per-tensor format metadata
// (rgemma_tensor_formats) is checked with one-line errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "load_error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "generate/engine.h"
#include "generate/session.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "model/quantized_dir.h"
#include "model/tensor_specs.h"
#include "model/weight_convert.h"
#include "model/weights.h"
#include "ops/quant.h"
#include "subprocess.h"

namespace rg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kBin = RG_BINARY;
const std::string kFixtures = std::string(RG_TEST_DATA) + "/fixtures";
const std::string kTiny = kFixtures + "/tiny";
const std::string kEmbed = names::kEmbed;
const std::string kLmHead = names::kLmHead;

std::string ReadText(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A scratch directory removed at the end of the test.
struct TempDir {
  TempDir() {
    static int counter = 0;
    path = (fs::temp_directory_path() /
            ("rg_quantized_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++))).string();
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

// The bytes of one safetensors file, editable and writable back.
struct FileCopy {
  struct T {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  explicit FileCopy(const std::string& path) {
    auto f = SafetensorsFile::Open(path);
    for (const TensorView& tv : f->tensors()) {
      const auto* p = static_cast<const uint8_t*>(tv.data);
      tensors.push_back({tv.name, tv.dtype, tv.shape, std::vector<uint8_t>(p, p + tv.nbytes)});
    }
    metadata = f->metadata();
  }
  T* Find(const std::string& name) {
    for (T& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  void Write(const std::string& path) const {
    std::vector<TensorToWrite> out;
    for (const T& t : tensors) out.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
    WriteSafetensors(path, out, metadata);
  }
  std::vector<T> tensors;
  std::map<std::string, std::string> metadata;
};

// tiny with a larger random vocabulary (so that the embedding dominates and a
// q4 output with --shard-gb 0.001 puts the embedding and lm_head in different
// shards) and, optionally, an explicit lm_head.weight.
void WriteTinyVariant(const std::string& dir, int64_t vocab, bool explicit_head) {
  fs::create_directories(dir);
  json config = json::parse(ReadText(kTiny + "/config.json"));
  config["vocab_size"] = vocab;
  std::ofstream(dir + "/config.json") << config.dump(2);
  FileCopy f(kTiny + "/model.safetensors");
  FileCopy::T* e = f.Find(kEmbed);
  const int64_t D = e->shape[1];
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 0.5f);
  auto random_matrix = [&](const std::string& name) {
    std::vector<float> w(size_t(vocab * D));
    for (float& x : w) x = normal(rng);
    FileCopy::T t{name, DType::F32, {vocab, D}, std::vector<uint8_t>(w.size() * 4)};
    std::memcpy(t.bytes.data(), w.data(), t.bytes.size());
    return t;
  };
  *e = random_matrix(kEmbed);
  if (explicit_head) f.tensors.push_back(random_matrix(kLmHead));
  f.Write(dir + "/model.safetensors");
}

void Quantize(const std::string& in, const std::string& to, const std::string& out,
              const std::string& extra = "") {
  auto r = test::RunCommand(kBin + " quantize -m " + in + " --to " + to + " --out " + out + " -t 2 " + extra);
  ASSERT_EQ(r.status, 0) << r.output;
}

std::vector<std::string> SafetensorsFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every matrix of a loaded model with its spec (a tied lm_head is skipped:
// it is the embedding).
void ForEachMatrix(const Weights& w, const std::function<void(const TensorSpec&, const WeightMatrix&)>& fn) {
  ForEachLoadedTensor(w, [&](const TensorSpec& s, TensorValue v) {
    if (!s.required && w.tied_lm_head) return;
    if (v.matrix) fn(s, *v.matrix);
  });
}

// Checks the q4 mix of a loaded model by role: embedding / output head q8,
// every other matrix q4.
void ExpectQ4Mix(const Weights& w) {
  int embeddings = 0, matrices = 0;
  ForEachMatrix(w, [&](const TensorSpec& s, const WeightMatrix& m) {
    if (s.role == TensorRole::kEmbedding) {
      EXPECT_EQ(m.format, WeightFormat::Q8) << s.name;
      ++embeddings;
    } else {
      EXPECT_EQ(m.format, WeightFormat::Q4) << s.name;
      ++matrices;
    }
  });
  EXPECT_GE(embeddings, 1);
  EXPECT_GT(matrices, 0);
  EXPECT_EQ(w.lm_head.format, WeightFormat::Q8);
}

// Logits of a prefill and of a few decode steps after it.
std::vector<float> LogitsOf(std::shared_ptr<const Weights> w) {
  ThreadPool pool(2);
  Session s(std::move(w), pool);
  const int64_t V = s.config().vocab_size;
  const float* l = s.Prefill(std::vector<int32_t>{2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  std::vector<float> out(l, l + V);
  for (int32_t t : {5, 300, 17}) {
    l = s.Step(t);
    out.insert(out.end(), l, l + V);
  }
  return out;
}

// ---- the policy

TEST(QuantizedModel, PolicyKeepsOnlyTheEmbeddingOfQ4AtQ8) {
  EXPECT_EQ(MatrixFormatFor(TensorRole::kEmbedding, WeightFormat::Q4), WeightFormat::Q8);
  EXPECT_EQ(MatrixFormatFor(TensorRole::kMatrix, WeightFormat::Q4), WeightFormat::Q4);
  for (WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Q8}) {
    EXPECT_EQ(MatrixFormatFor(TensorRole::kEmbedding, f), f);
    EXPECT_EQ(MatrixFormatFor(TensorRole::kMatrix, f), f);
  }
  EXPECT_THROW(MatrixFormatFor(TensorRole::kNormScale, WeightFormat::Q4), Error);
}

// ---- (1) what `quantize --to q4` stores

TEST(QuantizedModel, Q4DirectoryStoresEmbeddingAtQ8) {
  for (const std::string fixture : {"tiny", "tiny-bf16"}) {
    SCOPED_TRACE(fixture);
    TempDir t;
    Quantize(kFixtures + "/" + fixture, "q4", t.path + "/q4");
    auto file = SafetensorsFile::Open(t.path + "/q4/model.safetensors");
    const auto& meta = file->metadata();
    ASSERT_TRUE(meta.count(kQuantFormatKey));
    EXPECT_EQ(meta.at(kQuantFormatKey), "q4");
    EXPECT_EQ(meta.at(kQuantVersionKey), std::to_string(kQuantFormatVersion));
    ASSERT_TRUE(meta.count(kTensorFormatsKey));
    EXPECT_EQ(json::parse(meta.at(kTensorFormatsKey)), json({{kEmbed, "q8"}}));

    // Bytes on disk: the embedding has the q8 size, every other matrix the q4 one.
    auto w = Weights::Load(t.path + "/q4");
    const int64_t V = w->config.vocab_size, D = w->config.width;
    const TensorView* e = file->Find(kEmbed);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, DType::U8);
    EXPECT_EQ(e->nbytes, QuantizedBytes(WeightFormat::Q8, V, D));
    EXPECT_NE(QuantizedBytes(WeightFormat::Q8, V, D), QuantizedBytes(WeightFormat::Q4, V, D));
    ForEachMatrix(*w, [&](const TensorSpec& s, const WeightMatrix& m) {
      const TensorView* tv = file->Find(s.name);
      ASSERT_NE(tv, nullptr) << s.name;
      const WeightFormat want = s.role == TensorRole::kEmbedding ? WeightFormat::Q8 : WeightFormat::Q4;
      EXPECT_EQ(tv->nbytes, QuantizedBytes(want, s.shape[0], s.shape[1])) << s.name;
      EXPECT_EQ(WeightMatrixBytes(m), tv->nbytes) << s.name;
      EXPECT_EQ(std::memcmp(m.data, tv->data, tv->nbytes), 0) << s.name;
    });

    // After load: q8 embedding (the tied head shares it), q4 elsewhere.
    ExpectQ4Mix(*w);
    EXPECT_TRUE(w->tied_lm_head);
    EXPECT_EQ(w->lm_head.data, w->embed.data);
  }
}

TEST(QuantizedModel, Q8DirectoryHasNoPerTensorFormats) {
  TempDir t;
  Quantize(kTiny, "q8", t.path + "/q8");
  auto file = SafetensorsFile::Open(t.path + "/q8/model.safetensors");
  EXPECT_EQ(file->metadata().at(kQuantFormatKey), "q8");
  EXPECT_FALSE(file->metadata().count(kTensorFormatsKey));
  auto w = Weights::Load(t.path + "/q8");
  ForEachMatrix(*w, [&](const TensorSpec& s, const WeightMatrix& m) { EXPECT_EQ(m.format, WeightFormat::Q8) << s.name; });
}

TEST(QuantizedModel, ExplicitLmHeadIsQ8AndEachShardListsItsOwnTensors) {
  TempDir t;
  WriteTinyVariant(t.path + "/src", 8192, /*explicit_head=*/true);
  Quantize(t.path + "/src", "q4", t.path + "/q4", "--shard-gb 0.001");
  const auto files = SafetensorsFiles(t.path + "/q4");
  ASSERT_GE(files.size(), 2u) << "the test wants the embedding and lm_head in different shards";
  std::map<std::string, std::string> listed;  // tensor -> format, over all shards
  for (const std::string& path : files) {
    auto f = SafetensorsFile::Open(path);
    EXPECT_EQ(f->metadata().at(kQuantFormatKey), "q4") << path;
    auto it = f->metadata().find(kTensorFormatsKey);
    if (it == f->metadata().end()) continue;
    const json formats = json::parse(it->second);
    for (const auto& [name, fmt] : formats.items()) {
      EXPECT_NE(f->Find(name), nullptr) << path << " lists " << name << ", which it does not hold";
      listed[name] = fmt.get<std::string>();
    }
  }
  EXPECT_EQ(listed, (std::map<std::string, std::string>{{kEmbed, "q8"}, {kLmHead, "q8"}}));

  auto w = Weights::Load(t.path + "/q4");
  EXPECT_FALSE(w->tied_lm_head);
  EXPECT_NE(w->lm_head.data, w->embed.data);
  ExpectQ4Mix(*w);
  EXPECT_EQ(w->embed.format, WeightFormat::Q8);
}

// The RG-LRU gates follow the matrices: quantized (as Q8_256 [H*b, b]) for
// the _256 formats only; bf16 / q8 / q4 keep the f32 blocks. The decode cost
// counts what runs.
TEST(QuantizedModel, GatesAreQuantizedForThe256FormatsOnly) {
  TempDir t;
  for (const std::string to : {"q8", "q4", "q8_256", "q4_256"}) {
    SCOPED_TRACE(to);
    const std::string out = t.path + "/small-" + to;
    Quantize(kFixtures + "/small", to, out);
    LoadOptions opt;
    opt.matrix_format = ParseWeightFormat(to);
    for (const auto& w : {Weights::Load(kFixtures + "/small", opt), Weights::Load(out)}) {
      const Config& c = w->config;
      const int64_t H = c.num_heads, b = c.lru_block_width();
      size_t gate_bytes = 0, recurrent = 0;
      for (const LayerWeights& l : w->layers) {
        const auto* r = std::get_if<RecurrentWeights>(&l.temporal);
        if (!r) continue;
        ++recurrent;
        for (const WeightMatrix* q : {&r->a_gate_q, &r->input_gate_q}) {
          if (to.size() > 2) {  // _256
            ASSERT_NE(q->data, nullptr);
            EXPECT_EQ(q->format, WeightFormat::Q8_256);
            EXPECT_EQ(q->rows, H * b);
            EXPECT_EQ(q->cols, b);
            gate_bytes += WeightMatrixBytes(*q);
          } else {
            EXPECT_EQ(q->data, nullptr);
            gate_bytes += size_t(H * b * b) * 4;
          }
        }
        EXPECT_NE(r->a_gate_w, nullptr);  // the f32 blocks stay loaded (written, fingerprinted)
      }
      ASSERT_GT(recurrent, 0u);
      size_t matrices = 0;
      ForEachLoadedTensor(*w, [&](const TensorSpec& s, TensorValue v) {
        if (s.role == TensorRole::kMatrix || s.name == kLmHead) matrices += WeightMatrixBytes(*v.matrix);
      });
      EXPECT_EQ(w->matrix_bytes_per_token(), matrices + gate_bytes);
    }
  }
}

// A gate block the quantizer cannot take (a NaN) is named when the _256
// formats quantize it; the f32 formats load it as stored.
TEST(QuantizedModel, UnquantizableGateIsNamed) {
  TempDir t;
  const std::string dir = t.path + "/nan-gate";
  fs::create_directories(dir);
  fs::copy_file(kTiny + "/config.json", dir + "/config.json");
  FileCopy f(kTiny + "/model.safetensors");
  std::string gate;  // the first gate block of the table
  ForEachTensor(LoadHFConfig(kTiny + "/config.json"), [&](const TensorSpec& s) {
    if (gate.empty() && s.role == TensorRole::kGateBlock) gate = s.name;
  });
  FileCopy::T* g = f.Find(gate);
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->dtype, DType::F32);
  const float nan = std::nanf("");
  std::memcpy(g->bytes.data() + 4 * 5, &nan, 4);
  f.Write(dir + "/model.safetensors");
  LoadOptions opt;
  opt.matrix_format = WeightFormat::Q8;
  EXPECT_NO_THROW(Weights::Load(dir, opt));
  opt.matrix_format = WeightFormat::Q8_256;
  try {
    Weights::Load(dir, opt);
    FAIL() << "a NaN gate was quantized";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr(dir + ": tensor '" + gate + "': cannot quantize to q8_256"));
  }
}

// ---- (2) quantizing at load == quantizing to disk

// The prefill chunk follows the matrices' format (generate/session.h): int8
// weights take kDefaultPrefillChunkInt8 rows, f32 / bf16 kDefaultPrefillChunk,
// in a Session and an Engine alike; an explicit size wins.
TEST(QuantizedModel, DefaultPrefillChunkFollowsTheFormat) {
  static_assert(kDefaultPrefillChunkInt8 != kDefaultPrefillChunk);
  ThreadPool pool(1);
  for (const std::string to : {"", "q8", "q4", "q8_256", "q4_256"}) {
    SCOPED_TRACE(to.empty() ? "as stored" : to);
    LoadOptions opt;
    if (!to.empty()) opt.matrix_format = ParseWeightFormat(to);
    opt.pool = &pool;
    std::shared_ptr<const Weights> w = Weights::Load(kTiny, opt);
    const int64_t want = to.empty() ? kDefaultPrefillChunk : kDefaultPrefillChunkInt8;
    EXPECT_EQ(DefaultPrefillChunk(*w), want);
    EXPECT_EQ(Session(w, pool).scratch().max_rows, want);
    EXPECT_EQ(Session(w, pool, 7).scratch().max_rows, 7);
    EXPECT_EQ(Engine(w, pool, EngineOptions{}).options().prefill_chunk, want);
  }
}

TEST(QuantizedModel, QuantizeOnLoadMatchesQuantizedDirectory) {
  TempDir t;
  WriteTinyVariant(t.path + "/wide", 2048, /*explicit_head=*/true);
  for (const std::string& src : {kTiny, kFixtures + "/tiny-bf16", kFixtures + "/small", t.path + "/wide"}) {
    for (const std::string to : {"q4", "q8", "q8_256", "q4_256"}) {  // the 256-column ones are opt-in
      SCOPED_TRACE(src + " " + to);
      const std::string out = t.path + "/" + fs::path(src).filename().string() + "-" + to;
      Quantize(src, to, out);
      ThreadPool pool(2);
      LoadOptions opt;
      opt.matrix_format = ParseWeightFormat(to);
      opt.pool = &pool;
      auto on_load = Weights::Load(src, opt);
      auto on_disk = Weights::Load(out);
      // Same format and the same bytes for every matrix...
      std::map<std::string, std::pair<WeightFormat, std::vector<uint8_t>>> a;
      ForEachMatrix(*on_load, [&](const TensorSpec& s, const WeightMatrix& m) {
        const auto* p = static_cast<const uint8_t*>(m.data);
        a[s.name] = {m.format, std::vector<uint8_t>(p, p + WeightMatrixBytes(m))};
      });
      size_t compared = 0;
      ForEachMatrix(*on_disk, [&](const TensorSpec& s, const WeightMatrix& m) {
        ASSERT_TRUE(a.count(s.name)) << s.name;
        EXPECT_EQ(a[s.name].first, m.format) << s.name;
        const auto* p = static_cast<const uint8_t*>(m.data);
        EXPECT_TRUE(a[s.name].second == std::vector<uint8_t>(p, p + WeightMatrixBytes(m))) << s.name;
        ++compared;
      });
      EXPECT_EQ(compared, a.size());
      if (to == "q4") {
        ExpectQ4Mix(*on_load);
        ExpectQ4Mix(*on_disk);
      }
      // ...hence bitwise the same logits.
      EXPECT_EQ(LogitsOf(on_load), LogitsOf(on_disk));
    }
  }
}

// ---- (3) malformed per-tensor formats: one-line errors naming file and tensor

class BadTensorFormats : public ::testing::Test {
 protected:
  void SetUp() override {
    Quantize(kTiny, "q4", dir());
    file_ = dir() + "/model.safetensors";
  }
  std::string dir() const { return t_.path + "/q4"; }
  // Rewrites the file with metadata edited by `edit`.
  void EditMetadata(const std::function<void(std::map<std::string, std::string>&)>& edit) {
    FileCopy f(file_);
    edit(f.metadata);
    f.Write(file_);
  }
  void SetFormats(const std::string& value) {
    EditMetadata([&](auto& m) { m[kTensorFormatsKey] = value; });
  }
  TempDir t_;
  std::string file_;
};

TEST_F(BadTensorFormats, TheUnmodifiedDirectoryLoads) { EXPECT_NO_THROW(Weights::Load(dir())); }

TEST_F(BadTensorFormats, NotJson) {
  SetFormats("{\"model.embed_tokens.weight\": q8");
  const std::string e = LoadError(dir());
  EXPECT_THAT(e, HasSubstr(file_));
  EXPECT_THAT(e, HasSubstr("rgemma_tensor_formats is not a JSON object"));
}

TEST_F(BadTensorFormats, NotAnObject) {
  SetFormats("[\"q8\"]");
  EXPECT_THAT(LoadError(dir()), HasSubstr(file_ + ": metadata rgemma_tensor_formats is not a JSON object"));
}

TEST_F(BadTensorFormats, NonStringFormat) {
  SetFormats("{\"model.embed_tokens.weight\": 8}");
  EXPECT_THAT(LoadError(dir()), HasSubstr(file_ + ": metadata rgemma_tensor_formats: tensor "
                                                  "'model.embed_tokens.weight' has format 8; expected \"q8\" or \"q4\""));
}

TEST_F(BadTensorFormats, UnknownFormat) {
  for (const char* f : {"q3", "bf16", "int8", "Q8", ""}) {
    SCOPED_TRACE(f);
    SetFormats(json({{kEmbed, f}}).dump());
    const std::string e = LoadError(dir());
    EXPECT_THAT(e, HasSubstr(file_ + ": metadata rgemma_tensor_formats: tensor 'model.embed_tokens.weight' "
                             "has unknown format \"" + std::string(f) + "\""));
  }
}

TEST_F(BadTensorFormats, EmbeddingEntryMissingDisagreesWithBytes) {
  // As the embedding is really q8, dropping its entry declares it q4.
  EditMetadata([](auto& m) { m.erase(kTensorFormatsKey); });
  auto w = Weights::Load(kTiny);
  const int64_t V = w->config.vocab_size, D = w->config.width;
  EXPECT_THAT(LoadError(dir()),
              HasSubstr(file_ + ": tensor 'model.embed_tokens.weight' is declared q4 (rgemma_matrix_format) and must "
                        "hold U8 [" + std::to_string(QuantizedBytes(WeightFormat::Q4, V, D)) + "] bytes for shape [" +
                        std::to_string(V) + ", " + std::to_string(D) + "], got U8 [" +
                        std::to_string(QuantizedBytes(WeightFormat::Q8, V, D)) + "]"));
}

TEST_F(BadTensorFormats, LayerDeclaredQ8HoldsQ4Bytes) {
  const std::string name = "model.layers.0.mlp_block.up_proj.weight";  // [M, D]
  const Config c = Weights::Load(kTiny)->config;
  const int64_t M = c.mlp_width, D = c.width;
  SetFormats(json({{kEmbed, "q8"}, {name, "q8"}}).dump());
  EXPECT_THAT(LoadError(dir()),
              HasSubstr(file_ + ": tensor '" + name + "' is declared q8 (rgemma_tensor_formats) and must hold U8 [" +
                        std::to_string(QuantizedBytes(WeightFormat::Q8, M, D)) + "] bytes for shape [" +
                        std::to_string(M) + ", " + std::to_string(D) + "], got U8 [" +
                        std::to_string(QuantizedBytes(WeightFormat::Q4, M, D)) + "]"));
}

TEST_F(BadTensorFormats, ListsATensorThatIsNotAMatrix) {
  SetFormats(json({{kEmbed, "q8"}, {names::kFinalNorm, "q8"}}).dump());
  EXPECT_THAT(LoadError(dir()), HasSubstr(file_ + ": metadata rgemma_tensor_formats lists tensor "
                                                  "'model.final_norm.weight', which is not a matrix"));
}

TEST_F(BadTensorFormats, ListsATensorNotInTheFile) {
  SetFormats(json({{kEmbed, "q8"}, {kLmHead, "q8"}}).dump());  // tied: no lm_head.weight
  EXPECT_THAT(LoadError(dir()), HasSubstr(file_ + ": metadata rgemma_tensor_formats lists tensor 'lm_head.weight', "
                                                  "which is not in this file"));
}

TEST_F(BadTensorFormats, WithoutMatrixFormat) {
  EditMetadata([](auto& m) {
    m.erase(kQuantFormatKey);
    m.erase(kQuantVersionKey);
  });
  EXPECT_THAT(LoadError(dir()),
              HasSubstr(file_ + ": metadata rgemma_tensor_formats without rgemma_matrix_format"));
}

TEST_F(BadTensorFormats, WrongVersionStillAsksToRequantize) {
  EditMetadata([](auto& m) { m[kQuantVersionKey] = "0"; });
  EXPECT_THAT(LoadError(dir()), HasSubstr("(re-run rgemma quantize)"));
}

// A q4 directory written before the mix (embedding at q4, no
// rgemma_tensor_formats) still loads, with its q4 embedding.
TEST_F(BadTensorFormats, OldAllQ4DirectoryStillLoads) {
  auto src = Weights::Load(kTiny);
  const int64_t V = src->config.vocab_size, D = src->config.width;
  auto orig = SafetensorsFile::Open(kTiny + "/model.safetensors");
  const TensorView* e = orig->Find(kEmbed);
  ASSERT_EQ(e->dtype, DType::F32);
  std::vector<uint8_t> q4(QuantizedBytes(WeightFormat::Q4, V, D));
  ThreadPool pool(1);
  QuantizeMatrix(WeightFormat::Q4, static_cast<const float*>(e->data), V, D, q4.data(), pool);
  FileCopy f(file_);
  f.metadata.erase(kTensorFormatsKey);
  f.Find(kEmbed)->shape = {int64_t(q4.size())};
  f.Find(kEmbed)->bytes = q4;
  f.Write(file_);
  auto w = Weights::Load(dir());
  EXPECT_EQ(w->embed.format, WeightFormat::Q4);
  EXPECT_EQ(w->lm_head.format, WeightFormat::Q4);
  EXPECT_EQ(std::memcmp(w->embed.data, q4.data(), q4.size()), 0);
  const std::vector<float> logits = LogitsOf(w);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace rg
