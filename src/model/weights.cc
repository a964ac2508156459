#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "model/quantized_dir.h"
#include "model/rg_lru.h"
#include "model/weight_convert.h"
#include "ops/quant.h"

namespace rg {

Weights::Weights() = default;
Weights::~Weights() = default;

size_t WeightMatrixBytes(const WeightMatrix& m) { return MatrixStorageBytes(m.format, m.rows, m.cols); }

void Weights::ForEachDecodeMatrix(const std::function<void(const WeightMatrix&)>& fn) const {
  ForEachLoadedTensor(*this, [&](const TensorSpec& spec, TensorValue v) {
    if (spec.role == TensorRole::kMatrix || spec.name == names::kLmHead) {
      fn(*v.matrix);
    } else if (spec.role == TensorRole::kGateBlock) {  // [H, b, b]
      if (v.packed && v.packed->data) fn(*v.packed);
      else fn(WeightMatrix{WeightFormat::F32, spec.shape[0] * spec.shape[1], spec.shape[2], v.vec});
    }
  });
}

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
    const Config& c = w->config;
    w->tied_lm_head = ckpt.Find(names::kLmHead) == nullptr;

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
    packed_ = ReadPackedLayout(ckpt);
    // The matrices' format decides the gates' (a packed directory ignores matrix_format).
    const std::optional<WeightFormat> target = packed_.format ? packed_.format : opt_.matrix_format;
    if (target && c.lru_block_width() % kQuantGroupRows == 0) gate_format_ = GateFormatFor(*target);

    ForEachBoundTensor(c, w.get(), [&](const TensorSpec& spec, TensorSlot slot) {
      const TensorView* tv = ckpt.Find(spec.name);
      if (!tv) {
        RG_CHECK(!spec.required, dir_, ": missing tensor '", spec.name, "' (expected shape ",
                 ShapeString(spec.shape), ")");
        return;
      }
      if (packed_.format) {
        if (std::optional<WeightMatrix> m = PackedMatrix(packed_, spec, *tv)) {
          *slot.matrix = *m;
          Place(slot.matrix, *tv);
          return;
        }
      }
      RG_CHECK(tv->shape == spec.shape, tv->file, ": tensor '", spec.name, "' has shape ",
               ShapeString(tv->shape), " but config.json implies ", ShapeString(spec.shape),
               " (hidden_size ", c.width, ", lru_width ", c.lru_width, ", heads ", c.num_heads,
               ", head_dim ", c.head_dim, ", vocab ", c.vocab_size, ")");
      RG_CHECK(tv->dtype == DType::F32 || tv->dtype == DType::BF16 || tv->dtype == DType::F16, tv->file,
               ": tensor '", spec.name, "' has dtype ", DTypeName(tv->dtype), "; expected F32, BF16 or F16");
      if (slot.matrix) {
        *slot.matrix = LoadMatrix(*w, *tv, spec.role);
        if (slot.matrix->data == tv->data) Place(slot.matrix, *tv);
      } else {
        *slot.vec = LoadVector(*w, *tv, spec.role);
        if (slot.packed && gate_format_) *slot.packed = PackGate(*w, spec, *slot.vec);
      }
      if (opt_.copy_to_huge_pages) Checkpoint::ReleasePages(*tv);
    });
    PlaceMatrices(*w);
    if (w->tied_lm_head) w->lm_head = w->embed;

    // The RG-LRU's per-channel log decay -8 * softplus(Λ), derived once.
    for (LayerWeights& l : w->layers) {
      if (auto* r = std::get_if<RecurrentWeights>(&l.temporal)) {
        float* out = NewFloats(*w, c.lru_width);
        RgLruLogDecay(r->recurrent_param, c.lru_width, out);
        r->log_decay = out;
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

  // Matrices that stream from the file's bytes as stored: with
  // copy_to_huge_pages they are moved to 2 MiB pages by PlaceMatrices.
  void Place(WeightMatrix* m, const TensorView& tv) {
    if (opt_.copy_to_huge_pages && tv.nbytes > 0) placements_.push_back({m, &tv});
  }

  // Maps each placed matrix on its own, reads it in from the page cache with
  // all threads, then keeps the mappings the kernel backs with 2 MiB pages
  // (>= kMinHugeFraction of it) and copies the others into anonymous huge
  // pages. A warm start thus copies only what the page cache holds in small
  // folios; the copy's cost is the kernel zeroing fresh huge pages (~7 GB/s
  // with 2 threads here, 0.4 GB/s for memory this VM never touched before).
  void PlaceMatrices(Weights& w) {
    constexpr double kMinHugeFraction = 0.95;
    constexpr size_t kPiece = size_t(2) << 20, kReport = size_t(128) << 20;
    std::vector<std::unique_ptr<FileRangeMap>> maps;  // [placements_]
    size_t total = 0;
    for (const Placement& p : placements_) {
      maps.push_back(std::make_unique<FileRangeMap>(p.tv->file, p.tv->offset, p.tv->nbytes));
      total += p.tv->nbytes;
    }
    size_t done = 0;  // bytes populated plus bytes placed: 2 * total at the end
    auto report = [&](size_t n) {
      done += n;
      if (opt_.progress) opt_.progress(done, 2 * total);
    };
    // fn(lo, hi) over the range of map m in 2 MiB pieces across the pool,
    // reported every kReport bytes.
    auto each_piece = [&](const FileRangeMap& m, auto&& fn) {
      for (size_t b0 = 0; b0 < m.bytes(); b0 += kReport) {
        const size_t b1 = std::min(m.bytes(), b0 + kReport);
        ForPieces(b1 - b0, kPiece, [&](size_t lo, size_t hi) { fn(b0 + lo, b0 + hi); });
        report(b1 - b0);
      }
    };
    for (const auto& m : maps) each_piece(*m, [&](size_t lo, size_t hi) { m->Populate(lo, hi); });
    std::vector<const FileRangeMap*> views;
    for (const auto& m : maps) views.push_back(m.get());
    const std::vector<double> huge = HugeMappedFractions(views);
    for (size_t i = 0; i < maps.size(); ++i) {
      WeightMatrix* m = placements_[i].matrix;
      if (huge[i] >= kMinHugeFraction) {
        m->data = maps[i]->data();
        report(maps[i]->bytes());
        w.mapped_.push_back(std::move(*maps[i]));
      } else {
        w.owned_.emplace_back(maps[i]->bytes(), /*zero=*/false);
        char* dst = w.owned_.back().data<char>();
        const char* src = static_cast<const char*>(maps[i]->data());
        each_piece(*maps[i], [&](size_t lo, size_t hi) {
          std::memcpy(dst + lo, src + lo, hi - lo);
          maps[i]->Release(lo, hi);  // the source piece leaves RSS as its copy enters
        });
        m->data = dst;
      }
      maps[i].reset();  // unmapped as we go: peak memory stays the model's size plus a few pieces
    }
    for (const Placement& p : placements_) Checkpoint::ReleasePages(*p.tv);
    placements_.clear();
  }

  // fn(lo, hi) over [0, n) in pieces of `piece` bytes, split across the pool.
  template <class Fn>
  void ForPieces(size_t n, size_t piece, Fn&& fn) {
    const int64_t pieces = int64_t((n + piece - 1) / piece);
    auto run = [&](int64_t p0, int64_t p1, int) { fn(size_t(p0) * piece, std::min(n, size_t(p1) * piece)); };
    if (opt_.pool) opt_.pool->ParallelFor(pieces, 1, run);
    else run(0, pieces, 0);
  }

  const float* LoadVector(Weights& w, const TensorView& tv, TensorRole role) {
    const int64_t n = tv.numel();
    float* out = NewFloats(w, n);
    ConvertToF32(tv, out);
    if (role == TensorRole::kNormScale) {
      for (int64_t i = 0; i < n; ++i) out[i] += 1.f;  // the reference applies (scale + 1)
    } else if (role == TensorRole::kConv) {
      // [L, 1, K] -> [K, L]: one contiguous row of channels per tap.
      const int64_t L = tv.shape[0], K = tv.shape[2];
      std::vector<float> tmp(out, out + n);
      for (int64_t ch = 0; ch < L; ++ch)
        for (int64_t k = 0; k < K; ++k) out[k * L + ch] = tmp[ch * K + k];
    }
    return out;
  }

  // The gate blocks gate [H, b_in, b_out] (f32, as loaded) as one quantized
  // matrix [H*b, b] in gate_format_.
  WeightMatrix PackGate(Weights& w, const TensorSpec& spec, const float* gate) {
    const int64_t H = spec.shape[0], b = spec.shape[1];
    WeightMatrix m{*gate_format_, H * b, b, nullptr};
    w.owned_.emplace_back(QuantizedBytes(m.format, m.rows, m.cols));
    ThreadPool local(1);
    try {
      QuantizeBlockDiag(m.format, gate, H, b, w.owned_.back().data(), opt_.pool ? *opt_.pool : local);
    } catch (const Error& e) {
      Fail(dir_, ": tensor '", spec.name, "': cannot quantize to ", WeightFormatName(m.format), ": ", e.what());
    }
    m.data = w.owned_.back().data();
    return m;
  }

  WeightMatrix LoadMatrix(Weights& w, const TensorView& tv, TensorRole role) {
    WeightMatrix m;
    m.rows = tv.shape[0];
    m.cols = tv.shape[1];
    const bool keep = !opt_.matrix_format.has_value();
    if (keep && (tv.dtype == DType::F32 || tv.dtype == DType::BF16)) {
      m.format = tv.dtype == DType::F32 ? WeightFormat::F32 : WeightFormat::BF16;
      m.data = tv.data;  // placed by PlaceMatrices
      return m;
    }
    m.format = keep ? WeightFormat::F32 : MatrixFormatFor(role, *opt_.matrix_format);
    w.owned_.emplace_back(MatrixStorageBytes(m.format, m.rows, m.cols));
    ConvertMatrix(tv, m.format, w.owned_.back().data(), opt_.pool);
    m.data = w.owned_.back().data();
    return m;
  }

  struct Placement {
    WeightMatrix* matrix;   // its data still points into the checkpoint mapping
    const TensorView* tv;
  };
  std::vector<Placement> placements_;
  std::string dir_;
  LoadOptions opt_;
  PackedLayout packed_;  // of an `rgemma quantize` directory (model/quantized_dir.h)
  std::optional<WeightFormat> gate_format_;  // GateFormatFor the matrices' format, if any
};

std::shared_ptr<const Weights> Weights::Load(const std::string& dir, const LoadOptions& opt) {
  return WeightsLoader(dir, opt).Load();
}

}  // namespace rg
