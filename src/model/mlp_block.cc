// Gated MLP: down(gelu_tanh(gate(x)) * up(x)).
#include "model/blocks.h"
#include "ops/activations.h"
#include "ops/matmul.h"

namespace rg {

void MlpBlock(const Config& c, const MlpWeights& w, Scratch& s, int64_t T) {
  const int64_t M = c.mlp_width;
  float* gate = s.wide_a.data();  // [T, M]
  float* up = s.wide_b.data();    // [T, M]
  const MatMulTarget gate_up[] = {{&w.gate, gate, w.gate_bias}, {&w.up, up, w.up_bias}};
  MatMulShared(gate_up, s.xn.data(), T, s.kernels);
  s.pool.ParallelFor(T * M, 4096, [&](int64_t i0, int64_t i1, int) { GeluMul(gate + i0, up + i0, i1 - i0); });
  MatMul(w.down, gate, T, s.branch.data(), w.down_bias, s.kernels);
}

}  // namespace rg
