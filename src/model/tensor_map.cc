// The tensor table: every HF tensor name, its shape under the config, its
// role, and the Weights field it loads into. The only list of the tensors and
// the only place their names are spelled: loading, shape checks, quantizing,
// writing random checkpoints, the model fingerprint and the decode cost all
// walk it (ForEachTensor, ForEachBoundTensor, ForEachLoadedTensor).
#include "model/tensor_specs.h"
#include "model/weights.h"

namespace rg {

std::string names::Layer(int i, const char* suffix) {
  return "model.layers." + std::to_string(i) + "." + suffix;
}

void ForEachTensor(const Config& c, const std::function<void(const TensorSpec&)>& fn) {
  ForEachBoundTensor(c, nullptr, [&](const TensorSpec& spec, TensorSlot) { fn(spec); });
}

// The table binds writable slots (for the loader); reading a loaded model
// through them writes nothing.
void ForEachLoadedTensor(const Weights& w, const std::function<void(const TensorSpec&, TensorValue)>& fn) {
  ForEachBoundTensor(w.config, const_cast<Weights*>(&w), [&](const TensorSpec& spec, TensorSlot slot) {
    fn(spec, TensorValue{slot.matrix, slot.vec ? *slot.vec : nullptr, slot.packed});
  });
}

void ForEachBoundTensor(const Config& c, Weights* w,
                        const std::function<void(const TensorSpec&, TensorSlot)>& fn) {
  const int64_t V = c.vocab_size, D = c.width, M = c.mlp_width, L = c.lru_width;
  const int64_t H = c.num_heads, h = c.head_dim, b = c.lru_block_width(), K = c.conv_width;
  using R = TensorRole;
  auto mat = [&](WeightMatrix* m) { return TensorSlot{w ? m : nullptr, nullptr}; };
  auto vec = [&](const float** v) { return TensorSlot{nullptr, w ? v : nullptr}; };
  auto gate = [&](const float** v, WeightMatrix* q) { return TensorSlot{nullptr, w ? v : nullptr, w ? q : nullptr}; };

  fn({names::kEmbed, {V, D}, R::kEmbedding, -1, true}, mat(w ? &w->embed : nullptr));
  for (int i = 0; i < int(c.num_layers()); ++i) {
    LayerWeights* lw = w ? &w->layers[i] : nullptr;
    auto t = [&](const char* suffix, std::vector<int64_t> shape, R role, TensorSlot slot) {
      fn({names::Layer(i, suffix), std::move(shape), role, i, true}, slot);
    };
    t("temporal_pre_norm.weight", {D}, R::kNormScale, vec(lw ? &lw->temporal_norm : nullptr));
    if (c.layers[i] == LayerKind::kRecurrent) {
      RecurrentWeights* r = lw ? &std::get<RecurrentWeights>(lw->temporal) : nullptr;
#define RG_FIELD(f) (r ? &r->f : nullptr)
      t("temporal_block.linear_y.weight", {L, D}, R::kMatrix, mat(RG_FIELD(linear_y)));
      t("temporal_block.linear_y.bias", {L}, R::kVector, vec(RG_FIELD(linear_y_bias)));
      t("temporal_block.linear_x.weight", {L, D}, R::kMatrix, mat(RG_FIELD(linear_x)));
      t("temporal_block.linear_x.bias", {L}, R::kVector, vec(RG_FIELD(linear_x_bias)));
      t("temporal_block.linear_out.weight", {D, L}, R::kMatrix, mat(RG_FIELD(linear_out)));
      t("temporal_block.linear_out.bias", {D}, R::kVector, vec(RG_FIELD(linear_out_bias)));
      t("temporal_block.conv_1d.weight", {L, 1, K}, R::kConv, vec(RG_FIELD(conv_w)));
      t("temporal_block.conv_1d.bias", {L}, R::kVector, vec(RG_FIELD(conv_b)));
      t("temporal_block.rg_lru.recurrent_param", {L}, R::kVector, vec(RG_FIELD(recurrent_param)));
      t("temporal_block.rg_lru.input_gate_weight", {H, b, b}, R::kGateBlock,
        gate(RG_FIELD(input_gate_w), RG_FIELD(input_gate_q)));
      t("temporal_block.rg_lru.input_gate_bias", {H, b}, R::kVector, vec(RG_FIELD(input_gate_b)));
      t("temporal_block.rg_lru.recurrent_gate_weight", {H, b, b}, R::kGateBlock,
        gate(RG_FIELD(a_gate_w), RG_FIELD(a_gate_q)));
      t("temporal_block.rg_lru.recurrent_gate_bias", {H, b}, R::kVector, vec(RG_FIELD(a_gate_b)));
#undef RG_FIELD
    } else {
      AttentionWeights* a = lw ? &std::get<AttentionWeights>(lw->temporal) : nullptr;
#define RG_FIELD(f) (a ? &a->f : nullptr)
      t("temporal_block.q_proj.weight", {H * h, D}, R::kMatrix, mat(RG_FIELD(q)));
      t("temporal_block.k_proj.weight", {h, D}, R::kMatrix, mat(RG_FIELD(k)));
      t("temporal_block.v_proj.weight", {h, D}, R::kMatrix, mat(RG_FIELD(v)));
      t("temporal_block.o_proj.weight", {D, H * h}, R::kMatrix, mat(RG_FIELD(o)));
      t("temporal_block.o_proj.bias", {D}, R::kVector, vec(RG_FIELD(o_bias)));
#undef RG_FIELD
    }
    MlpWeights* m = lw ? &lw->mlp : nullptr;
#define RG_FIELD(f) (m ? &m->f : nullptr)
    t("channel_pre_norm.weight", {D}, R::kNormScale, vec(lw ? &lw->channel_norm : nullptr));
    t("mlp_block.gate_proj.weight", {M, D}, R::kMatrix, mat(RG_FIELD(gate)));
    t("mlp_block.gate_proj.bias", {M}, R::kVector, vec(RG_FIELD(gate_bias)));
    t("mlp_block.up_proj.weight", {M, D}, R::kMatrix, mat(RG_FIELD(up)));
    t("mlp_block.up_proj.bias", {M}, R::kVector, vec(RG_FIELD(up_bias)));
    t("mlp_block.down_proj.weight", {D, M}, R::kMatrix, mat(RG_FIELD(down)));
    t("mlp_block.down_proj.bias", {D}, R::kVector, vec(RG_FIELD(down_bias)));
#undef RG_FIELD
  }
  fn({names::kFinalNorm, {D}, R::kNormScale, -1, true}, vec(w ? &w->final_norm : nullptr));
  fn({names::kLmHead, {V, D}, R::kEmbedding, -1, false}, mat(w ? &w->lm_head : nullptr));
}

}  // namespace rg
