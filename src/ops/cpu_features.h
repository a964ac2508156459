// Run-time choice of the SIMD level used by the kernels.
//
// The binary is built for baseline x86-64; kernels carry target attributes and
// are selected once per process from what the CPU and OS support. RG_ISA
// (scalar | avx2 | avx512) lowers the level, e.g. to compare paths; asking for
// more than the hardware has falls back to the best supported level.
#pragma once

#include <optional>

namespace rg {

enum class Isa : int {
  kScalar = 0,  // portable C++
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ + FMA
};

const char* IsaName(Isa isa);
std::optional<Isa> ParseIsa(const char* s);  // "scalar" | "avx2" | "avx512"

// Best level this CPU/OS supports (detected once).
Isa HardwareIsa();
// AVX512_BF16 (vdpbf16ps) present, in addition to the kAvx512 features.
bool HardwareHasAvx512Bf16();
// AVX512_VNNI (vpdpbusd) present, in addition to the kAvx512 features.
bool HardwareHasAvx512Vnni();

// The level the int8 (Q8/Q4) kernels run at when the others run at `level`:
// their AVX-512 build needs VNNI, so without it they drop to AVX2.
Isa Int8KernelIsa(Isa level);

// The level kernels use: HardwareIsa(), lowered by RG_ISA (read once), or the
// value forced by ForceIsaForTesting. The matrix kernels take their level
// from their KernelContext (ops/kernel_context.h), which starts from this.
Isa ActiveIsa();
// ActiveIsa() == kAvx512 and the CPU has vdpbf16ps.
bool ActiveHasAvx512Bf16();

// The kernel for the active level, from its three builds (each compiled
// with its own target attribute): PickIsa(scalar::F, avx2::F, avx512::F)(args).
template <class Fn>
Fn PickIsa(Fn scalar, Fn avx2, Fn avx512) {
  switch (ActiveIsa()) {
    case Isa::kAvx512: return avx512;
    case Isa::kAvx2: return avx2;
    case Isa::kScalar: break;
  }
  return scalar;
}

// Kernels written once as a macro M(NS, TARGET) and compiled per level:
// RG_FOR_EACH_ISA(M) defines namespaces scalar, avx2 and avx512, each built
// with its level's target attribute, for PickIsa(scalar::F, avx2::F, avx512::F).
#define RG_ISA_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RG_ISA_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#define RG_FOR_EACH_ISA(M) \
  M(scalar, )              \
  M(avx2, RG_ISA_TARGET_AVX2) M(avx512, RG_ISA_TARGET_AVX512)

// Tests and benchmarks: override the active level (clamped to HardwareIsa());
// returns the level actually in effect. std::nullopt restores the default.
// A test hook only: normal runs never call it. It stays a process-wide
// switch because the elementwise kernels (ops/activations.h,
// ops/recurrence.h) are called from model/ without a context; matrix
// products take their level from KernelOptions::isa instead.
Isa ForceIsaForTesting(std::optional<Isa> isa);

// min(level, HardwareIsa()).
Isa ClampToHardware(Isa level);

}  // namespace rg
