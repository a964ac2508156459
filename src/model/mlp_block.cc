// Gated MLP: down(gelu_tanh(gate(x)) * up(x)).
#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/matmul.h"

namespace rg {

void MlpBlock(const Config& c, const MlpWeights& w, const float* xn, float* out, int64_t T, const MlpScratch& s,
              KernelContext& k) {
  const int64_t M = c.mlp_width;
  const MatMulTarget gate_up[] = {{&w.gate, s.gate, w.gate_bias}, {&w.up, s.up, w.up_bias}};
  MatMulShared(gate_up, xn, T, k);
  k.pool().ParallelFor(T * M, 4096, [&](int64_t i0, int64_t i1, int) { GeluMul(s.gate + i0, s.up + i0, i1 - i0); });
  MatMul(w.down, s.gate, T, out, w.down_bias, k);
}

}  // namespace rg
