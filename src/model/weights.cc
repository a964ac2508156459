#include "model/weights.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/weight_convert.h"
#include "ops/quant.h"

namespace rg {

Weights::Weights() = default;
Weights::~Weights() = default;

size_t WeightMatrixBytes(const WeightMatrix& m) { return MatrixStorageBytes(m.format, m.rows, m.cols); }

size_t Weights::matrix_bytes_per_token() const {
  size_t total = 0;
  ForEachDecodeMatrix([&](const WeightMatrix& m) { total += WeightMatrixBytes(m); });
  return total;
}

class WeightsLoader {
 public:
  WeightsLoader(const std::string& dir, const LoadOptions& opt) : dir_(dir), opt_(opt) {}

  std::shared_ptr<const Weights> Load() {
    std::shared_ptr<Weights> w(new Weights());
    w->dir = dir_;
    w->config = LoadHFConfig(dir_ + "/config.json");
    w->checkpoint_ = Checkpoint::Open(dir_);
    const Checkpoint& ckpt = *w->checkpoint_;
    Config& c = w->config;
    c.tied_lm_head = ckpt.Find(names::kLmHead) == nullptr;

    // Reject unexpected tensors before touching any data.
    std::set<std::string> expected;
    ForEachTensor(c, [&](const TensorSpec& s) { expected.insert(s.name); });
    for (const std::string& name : ckpt.Names())
      RG_CHECK(expected.count(name), ckpt.Find(name)->file, ": unexpected tensor '", name,
               "': not part of a RecurrentGemma model with this config.json (",
               c.num_layers(), " layers; check num_hidden_layers / block_types)");

    for (LayerKind kind : c.layers) {
      LayerWeights lw{};
      if (kind == LayerKind::kRecurrent) lw.temporal = RecurrentWeights{};
      else lw.temporal = AttentionWeights{};
      w->layers.push_back(lw);
    }
    if (opt_.advise_huge_pages) ckpt.AdviseHugePages();
    packed_ = PackedFormat(ckpt);
    size_t total_bytes = 0, done_bytes = 0;
    for (const std::string& name : ckpt.Names()) total_bytes += ckpt.Find(name)->nbytes;
    auto loaded = [&](const TensorView& tv) {
      done_bytes += tv.nbytes;
      if (opt_.progress) opt_.progress(done_bytes, total_bytes);
    };

    ForEachBoundTensor(c, w.get(), [&](const TensorSpec& spec, TensorSlot slot) {
      const TensorView* tv = ckpt.Find(spec.name);
      if (!tv) {
        RG_CHECK(!spec.required, dir_, ": missing tensor '", spec.name, "' (expected shape ",
                 ShapeString(spec.shape), ")");
        return;
      }
      if (packed_) {
        auto declared = tensor_formats_.find(spec.name);
        const bool listed = declared != tensor_formats_.end();
        RG_CHECK(!listed || IsMatrixRole(spec.role), tv->file, ": metadata ", kTensorFormatsKey, " lists tensor '",
                 spec.name, "', which is not a matrix (only matrices are packed)");
        if (IsMatrixRole(spec.role)) {
          const WeightFormat fmt = listed ? declared->second : *packed_;
          const size_t want = MatrixStorageBytes(fmt, spec.shape[0], spec.shape[1]);
          RG_CHECK(tv->dtype == DType::U8 && tv->shape == std::vector<int64_t>{int64_t(want)}, tv->file,
                   ": tensor '", spec.name, "' is declared ", WeightFormatName(fmt), " (",
                   listed ? kTensorFormatsKey : kQuantFormatKey, ") and must hold U8 [", want,
                   "] bytes for shape ", ShapeString(spec.shape), ", got ", DTypeName(tv->dtype), " ",
                   ShapeString(tv->shape));
          *slot.matrix = WeightMatrix{fmt, spec.shape[0], spec.shape[1], MaybeCopy(*w, *tv)};
          if (opt_.copy_to_huge_pages) Checkpoint::ReleasePages(*tv);
          loaded(*tv);
          return;
        }
      }
      RG_CHECK(tv->shape == spec.shape, tv->file, ": tensor '", spec.name, "' has shape ",
               ShapeString(tv->shape), " but config.json implies ", ShapeString(spec.shape),
               " (hidden_size ", c.width, ", lru_width ", c.lru_width, ", heads ", c.num_heads,
               ", head_dim ", c.head_dim, ", vocab ", c.vocab_size, ")");
      RG_CHECK(tv->dtype == DType::F32 || tv->dtype == DType::BF16 || tv->dtype == DType::F16, tv->file,
               ": tensor '", spec.name, "' has dtype ", DTypeName(tv->dtype), "; expected F32, BF16 or F16");
      if (slot.matrix) *slot.matrix = LoadMatrix(*w, *tv, spec.role);
      else *slot.vec = LoadVector(*w, *tv, spec.role);
      if (opt_.copy_to_huge_pages) Checkpoint::ReleasePages(*tv);
      loaded(*tv);
    });
    if (c.tied_lm_head) w->lm_head = w->embed;

    // Derived per-channel constant of the RG-LRU decay: log_a = log_a_scale * gate_a.
    // -8 * softplus(Λ) * a is bitwise equal to the reference's (-8 * a) * softplus(Λ):
    // scaling by 8 is exact.
    for (LayerWeights& l : w->layers) {
      if (auto* r = std::get_if<RecurrentWeights>(&l.temporal)) {
        float* out = NewFloats(*w, c.lru_width);
        for (int64_t i = 0; i < c.lru_width; ++i) {
          const float x = r->recurrent_param[i];
          const float softplus = x > 20.f ? x : std::log1p(std::exp(x));  // torch: beta 1, threshold 20
          out[i] = -8.f * softplus;
        }
        r->log_a_scale = out;
      }
    }
    w->embed_scale = RoundToBF16(std::sqrt(float(c.width)));
    return w;
  }

 private:
  float* NewFloats(Weights& w, int64_t n) {
    w.owned_.emplace_back(size_t(n) * sizeof(float));
    return w.owned_.back().data<float>();
  }

  // The tensor's bytes in huge-page-backed memory (copied in parallel), or the
  // mapping itself when copying is off.
  const void* MaybeCopy(Weights& w, const TensorView& tv) {
    if (!opt_.copy_to_huge_pages) return tv.data;
    w.owned_.emplace_back(tv.nbytes, /*zero=*/false);
    char* dst = w.owned_.back().data<char>();
    const char* src = static_cast<const char*>(tv.data);
    auto copy = [&](int64_t b, int64_t e, int) { std::memcpy(dst + b, src + b, size_t(e - b)); };
    if (opt_.pool) opt_.pool->ParallelFor(int64_t(tv.nbytes), 1 << 20, copy);
    else copy(0, int64_t(tv.nbytes), 0);
    return dst;
  }

  const float* LoadVector(Weights& w, const TensorView& tv, TensorRole role) {
    const int64_t n = tv.numel();
    float* out = NewFloats(w, n);
    ConvertToF32(tv, out);
    if (role == TensorRole::kNormScale) {
      for (int64_t i = 0; i < n; ++i) out[i] += 1.f;  // the reference applies (scale + 1)
    } else if (role == TensorRole::kGateBlock) {
      // [H, in, out] -> [H, out, in] so each head is a row-major [out, in] matrix.
      const int64_t H = tv.shape[0], b = tv.shape[1];
      std::vector<float> tmp(out, out + n);
      for (int64_t hd = 0; hd < H; ++hd)
        for (int64_t i = 0; i < b; ++i)
          for (int64_t j = 0; j < b; ++j) out[(hd * b + j) * b + i] = tmp[(hd * b + i) * b + j];
    } else if (role == TensorRole::kConv) {
      // [L, 1, K] -> [K, L]: one contiguous row of channels per tap.
      const int64_t L = tv.shape[0], K = tv.shape[2];
      std::vector<float> tmp(out, out + n);
      for (int64_t ch = 0; ch < L; ++ch)
        for (int64_t k = 0; k < K; ++k) out[k * L + ch] = tmp[ch * K + k];
    }
    return out;
  }

  WeightMatrix LoadMatrix(Weights& w, const TensorView& tv, TensorRole role) {
    WeightMatrix m;
    m.rows = tv.shape[0];
    m.cols = tv.shape[1];
    const bool keep = !opt_.matrix_format.has_value();
    if (keep && tv.dtype == DType::F32) {
      m.format = WeightFormat::F32;
      m.data = MaybeCopy(w, tv);
      return m;
    }
    if (keep && tv.dtype == DType::BF16) {
      m.format = WeightFormat::BF16;
      m.data = MaybeCopy(w, tv);
      return m;
    }
    m.format = keep ? WeightFormat::F32 : MatrixFormatFor(role, *opt_.matrix_format);
    w.owned_.emplace_back(MatrixStorageBytes(m.format, m.rows, m.cols));
    ConvertMatrix(tv, m.format, w.owned_.back().data(), opt_.pool);
    m.data = w.owned_.back().data();
    return m;
  }

  // The packed matrix format of an `rgemma quantize` directory, from the
  // safetensors metadata (nullopt for plain HF checkpoints), and into
  // tensor_formats_ the tensors each file declares in another format
  // (model/weight_convert.h).
  std::optional<WeightFormat> PackedFormat(const Checkpoint& ckpt) {
    std::optional<WeightFormat> found;
    for (const auto& f : ckpt.files()) {
      auto it = f->metadata().find(kQuantFormatKey);
      auto listed = f->metadata().find(kTensorFormatsKey);
      if (it == f->metadata().end()) {
        RG_CHECK(listed == f->metadata().end(), f->path(), ": metadata ", kTensorFormatsKey, " without ",
                 kQuantFormatKey);
        continue;
      }
      auto fmt = ParseWeightFormat(it->second);
      RG_CHECK(fmt && IsQuantizedFormat(*fmt), f->path(), ": metadata ", kQuantFormatKey, " is '", it->second,
               "'; expected q8 or q4");
      auto ver = f->metadata().find(kQuantVersionKey);
      RG_CHECK(ver != f->metadata().end() && ver->second == std::to_string(kQuantFormatVersion), f->path(),
               ": packed weights of format version '", ver == f->metadata().end() ? "(none)" : ver->second,
               "'; this rgemma reads version ", kQuantFormatVersion, " (re-run rgemma quantize)");
      RG_CHECK(!found || *found == *fmt, f->path(), ": shards disagree on the packed format");
      found = fmt;
      if (listed == f->metadata().end()) continue;
      for (const auto& [name, tf] : ParseTensorFormats(listed->second, f->path())) {
        RG_CHECK(f->Find(name), f->path(), ": metadata ", kTensorFormatsKey, " lists tensor '", name,
                 "', which is not in this file");
        tensor_formats_[name] = tf;
      }
    }
    return found;
  }

  std::map<std::string, WeightFormat> tensor_formats_;  // declared per-tensor formats of a packed directory
  std::string dir_;
  LoadOptions opt_;
  std::optional<WeightFormat> packed_;
};

std::shared_ptr<const Weights> Weights::Load(const std::string& dir, const LoadOptions& opt) {
  return WeightsLoader(dir, opt).Load();
}

}  // namespace rg
