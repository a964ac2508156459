#include "ops/cpu_features.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <strings.h>

namespace rg {
namespace {

struct Hardware {
  Isa isa = Isa::kScalar;
  bool avx512bf16 = false;
  bool avx512vnni = false;
};

const Hardware& DetectHardware() {
  static const Hardware hw = [] {
    Hardware h;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    // libgcc's checks include the OS (XGETBV) support for the register state.
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq");
    h.isa = avx512 ? Isa::kAvx512 : avx2 ? Isa::kAvx2 : Isa::kScalar;
    h.avx512bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    h.avx512vnni = avx512 && __builtin_cpu_supports("avx512vnni");
#endif
    return h;
  }();
  return hw;
}

Isa DefaultIsa() {
  static const Isa isa = [] {
    const Isa hw = DetectHardware().isa;
    const char* env = std::getenv("RG_ISA");
    if (!env || !*env) return hw;
    const std::optional<Isa> want = ParseIsa(env);
    if (!want) {
      std::fprintf(stderr, "rgemma: ignoring RG_ISA=%s (expected scalar, avx2 or avx512)\n", env);
      return hw;
    }
    if (int(*want) > int(hw)) {
      std::fprintf(stderr, "rgemma: RG_ISA=%s not supported by this CPU, using %s\n", env,
                   IsaName(hw));
      return hw;
    }
    return *want;
  }();
  return isa;
}

std::atomic<int> g_forced{-1};

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

std::optional<Isa> ParseIsa(const char* s) {
  if (!s) return std::nullopt;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (strcasecmp(s, IsaName(i)) == 0) return i;
  return std::nullopt;
}

Isa HardwareIsa() { return DetectHardware().isa; }
bool HardwareHasAvx512Bf16() { return DetectHardware().avx512bf16; }
bool HardwareHasAvx512Vnni() { return DetectHardware().avx512vnni; }

Isa Int8KernelIsa(Isa level) {
  level = ClampToHardware(level);
  return level == Isa::kAvx512 && !HardwareHasAvx512Vnni() ? Isa::kAvx2 : level;
}

Isa ClampToHardware(Isa level) { return int(level) > int(HardwareIsa()) ? HardwareIsa() : level; }

Isa ActiveIsa() {
  const int f = g_forced.load(std::memory_order_relaxed);
  return f >= 0 ? Isa(f) : DefaultIsa();
}

bool ActiveHasAvx512Bf16() { return ActiveIsa() == Isa::kAvx512 && HardwareHasAvx512Bf16(); }

Isa ForceIsaForTesting(std::optional<Isa> isa) {
  if (!isa) {
    g_forced.store(-1, std::memory_order_relaxed);
    return ActiveIsa();
  }
  const Isa eff = ClampToHardware(*isa);
  g_forced.store(int(eff), std::memory_order_relaxed);
  return eff;
}

}  // namespace rg
