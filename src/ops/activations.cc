#include "ops/activations.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu_features.h"

namespace rg {
namespace {

// The loops, written once as plain C++ and compiled three times: for the
// portable baseline, for AVX2+FMA and for AVX-512. The compiler vectorizes
// them (ExpFast is branch-free); the ISA is chosen at run time.
#define RG_ACTIVATION_LOOPS(NS, TARGET)                                              \
  namespace NS {                                                                     \
  TARGET void Gelu(float* x, int64_t n) {                                            \
    for (int64_t i = 0; i < n; ++i) x[i] = GeluTanhFast(x[i]);                       \
  }                                                                                  \
  TARGET void GeluMul(float* g, const float* u, int64_t n) {                         \
    for (int64_t i = 0; i < n; ++i) g[i] = GeluTanhFast(g[i]) * u[i];                \
  }                                                                                  \
  TARGET void Exp(float* x, int64_t n) {                                             \
    for (int64_t i = 0; i < n; ++i) x[i] = ExpFast(x[i]);                            \
  }                                                                                  \
  TARGET void Sigmoid(float* x, int64_t n) {                                         \
    for (int64_t i = 0; i < n; ++i) x[i] = SigmoidFast(x[i]);                        \
  }                                                                                  \
  TARGET void SoftCap(float* x, int64_t n, float cap) {                              \
    const float inv = 1.f / cap;                                                     \
    for (int64_t i = 0; i < n; ++i) x[i] = TanhFast(x[i] * inv) * cap;               \
  }                                                                                  \
  /* Max and sum in 16 lanes so they vectorize without reassociation flags. */      \
  TARGET void Softmax(float* x, int64_t n) {                                         \
    float lane[16];                                                                  \
    for (float& l : lane) l = x[0];                                                  \
    int64_t i = 0;                                                                   \
    for (; i + 16 <= n; i += 16)                                                     \
      for (int j = 0; j < 16; ++j) lane[j] = lane[j] > x[i + j] ? lane[j] : x[i + j]; \
    float mx = x[0];                                                                 \
    for (float l : lane) mx = std::max(mx, l);                                       \
    for (; i < n; ++i) mx = std::max(mx, x[i]);                                      \
    for (int64_t k = 0; k < n; ++k) x[k] = ExpFast(x[k] - mx);                       \
    for (float& l : lane) l = 0.f;                                                   \
    for (i = 0; i + 16 <= n; i += 16)                                                \
      for (int j = 0; j < 16; ++j) lane[j] += x[i + j];                              \
    float sum = 0.f;                                                                 \
    for (float l : lane) sum += l;                                                   \
    for (; i < n; ++i) sum += x[i];                                                  \
    const float inv = 1.f / sum;                                                     \
    for (int64_t k = 0; k < n; ++k) x[k] *= inv;                                     \
  }                                                                                  \
  }  // namespace NS

RG_FOR_EACH_ISA(RG_ACTIVATION_LOOPS)
#undef RG_ACTIVATION_LOOPS

}  // namespace

#define RG_PICK(FN) PickIsa(scalar::FN, avx2::FN, avx512::FN)

void GeluInPlace(float* x, int64_t n) { RG_PICK(Gelu)(x, n); }
void GeluMul(float* gate, const float* up, int64_t n) { RG_PICK(GeluMul)(gate, up, n); }
void ExpInPlace(float* x, int64_t n) { RG_PICK(Exp)(x, n); }
void SigmoidInPlace(float* x, int64_t n) { RG_PICK(Sigmoid)(x, n); }
void SoftCap(float* x, int64_t n, float cap) {
  if (cap != 0.f) RG_PICK(SoftCap)(x, n, cap);
}
void Softmax(float* x, int64_t n) {
  if (n > 0) RG_PICK(Softmax)(x, n);
}
#undef RG_PICK

float GeluTanhReference(float x) {
  const float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

void SoftCapReference(float* x, int64_t n, float cap) {
  if (cap == 0.f) return;
  const float inv = 1.f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

void SoftmaxReference(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace rg
