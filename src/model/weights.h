// The model's parameters: immutable after loading and shared by every session.
// Big matrices stay in the checkpoint's mmapped bytes (F32/BF16) or in owned
// converted/quantized buffers; small tensors are f32 copies re-laid out for
// the kernels.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/threads.h"
#include "io/file_range_map.h"
#include "model/config.h"
#include "model/tensor_specs.h"
#include "ops/weight_matrix.h"

namespace rg {

class Checkpoint;

struct RecurrentWeights {
  WeightMatrix linear_y;           // [L, D]
  WeightMatrix linear_x;           // [L, D]
  WeightMatrix linear_out;         // [D, L]
  const float* linear_y_bias;      // [L]
  const float* linear_x_bias;      // [L]
  const float* linear_out_bias;    // [D]
  const float* conv_w;             // [K, L] tap-major; tap K-1 multiplies the current step
  const float* conv_b;             // [L]
  const float* recurrent_param;    // [L] Λ, as stored
  const float* log_decay;          // [L] -8 * softplus(Λ), derived at load (RgLruLogDecay)
  const float* input_gate_w;       // [H, b_in, b_out], as HF stores it
  const float* input_gate_b;       // [H, b]
  const float* a_gate_w;           // [H, b_in, b_out]
  const float* a_gate_b;           // [H, b]
  // The gates as quantized products when GateFormatFor(the matrices' format)
  // asks for it (model/weight_convert.h): [H*b, b], row h*b + j = column j of
  // block h (ops/quant.h QuantizeBlockDiag). data null: the f32 blocks run.
  WeightMatrix input_gate_q;
  WeightMatrix a_gate_q;
};

struct AttentionWeights {
  WeightMatrix q;        // [H*h, D]
  WeightMatrix k;        // [h, D]  (one key/value head)
  WeightMatrix v;        // [h, D]
  WeightMatrix o;        // [D, H*h]
  const float* o_bias;   // [D]
};

struct MlpWeights {
  WeightMatrix gate;        // [M, D]
  WeightMatrix up;          // [M, D]
  WeightMatrix down;        // [D, M]
  const float* gate_bias;   // [M]
  const float* up_bias;     // [M]
  const float* down_bias;   // [D]
};

struct LayerWeights {
  const float* temporal_norm;  // [D] as 1 + w
  const float* channel_norm;   // [D] as 1 + w
  std::variant<RecurrentWeights, AttentionWeights> temporal;
  MlpWeights mlp;
};

// Where ForEachBoundTensor puts a tensor: one of matrix / vec is set.
struct TensorSlot {
  WeightMatrix* matrix = nullptr;
  const float** vec = nullptr;
  WeightMatrix* packed = nullptr;  // kGateBlock: where its quantized form goes, if any
};

// A loaded tensor, as ForEachLoadedTensor shows it: one of matrix / vec is set.
struct TensorValue {
  const WeightMatrix* matrix = nullptr;
  const float* vec = nullptr;  // null only if the tensor was not loaded
  const WeightMatrix* packed = nullptr;  // kGateBlock: its quantized form (data null if none)
};

struct LoadOptions {
  // Convert every kMatrix/kEmbedding tensor at load time to
  // MatrixFormatFor(role, matrix_format) (model/weight_convert.h; e.g. BF16
  // or Q8 from an F32 checkpoint; Q4 keeps the embedding / output head at Q8,
  // exactly as `rgemma quantize --to q4` stores it). Unset: keep F32/BF16 as
  // stored (zero-copy), widen F16 to F32. Ignored for a directory written by
  // `rgemma quantize` q8/q4, whose matrices load in their stored formats.
  std::optional<WeightFormat> matrix_format;
  bool advise_huge_pages = true;
  // Stream every matrix from 2 MiB pages: streaming them every token then runs
  // at the full memory bandwidth (~60 GB/s here vs ~35 GB/s through 4 KiB
  // page-cache pages). Each matrix gets its own mapping of the file, read in
  // from the page cache by all threads; where the kernel maps it with 2 MiB
  // pages (the page cache holds it in huge folios) it stays zero-copy, the
  // rest is copied into anonymous huge pages (io/file_range_map.h).
  // false = plain zero-copy mmap of whole files, read lazily.
  bool copy_to_huge_pages = true;
  ThreadPool* pool = nullptr;  // for quantization and placement on load; may be null
  // Called on the loading thread as matrix bytes are placed: (done, total).
  std::function<void(size_t, size_t)> progress;
};

class Weights {
 public:
  // Loads config.json and the safetensors of a Hugging Face model directory,
  // or a directory written by `rgemma quantize`. Throws rg::Error naming the
  // file / tensor on any inconsistency.
  static std::shared_ptr<const Weights> Load(const std::string& dir, const LoadOptions& opt = {});

  Config config;
  WeightMatrix embed;          // [V, D]
  WeightMatrix lm_head;        // [V, D]; the same bytes as embed when tied
  // No lm_head.weight in the checkpoint: the output head is the embedding.
  // A property of the checkpoint, not of config.json (the loader sets it).
  bool tied_lm_head = true;
  const float* final_norm;     // [D] as 1 + w
  std::vector<LayerWeights> layers;
  float embed_scale;           // bf16(sqrt(D)), as the reference rounds it

  // Bytes of matrix weights read to produce one token's logits (decode
  // cost): the matrices of ForEachDecodeMatrix.
  size_t matrix_bytes_per_token() const;

  // fn for every matrix one token's logits read, from the tensor table: the
  // output head (lm_head; the embedding's bytes when tied) and every kMatrix,
  // the RG-LRU gate blocks included (as F32 [H*b, b]: decode reads them every
  // token too). Not the embedding: decoding reads one row of it.
  void ForEachDecodeMatrix(const std::function<void(const WeightMatrix&)>& fn) const;
  std::string dir;

  ~Weights();

 private:
  Weights();
  std::shared_ptr<Checkpoint> checkpoint_;
  std::deque<AlignedBuffer> owned_;  // converted tensors; addresses are stable
  std::vector<FileRangeMap> mapped_;  // matrices kept zero-copy in 2 MiB pages
  friend class WeightsLoader;
};

// The tensor table (model/tensor_map.cc): visits every tensor of `config`
// with the slot in `w` it loads into (w's layers must be sized and their
// variants set; see Weights::Load). w null: the specs alone (ForEachTensor).
void ForEachBoundTensor(const Config& config, Weights* w,
                        const std::function<void(const TensorSpec&, TensorSlot)>& fn);

// The same over a loaded model, read-only, in table order. lm_head is
// visited when tied too (it then holds the embedding's bytes).
void ForEachLoadedTensor(const Weights& w, const std::function<void(const TensorSpec&, TensorValue)>& fn);

size_t WeightMatrixBytes(const WeightMatrix& m);

}  // namespace rg
