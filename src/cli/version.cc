#include "cli/version.h"

#include "core/error.h"
#include "ops/cpu_features.h"

#ifndef RG_GIT_COMMIT
#define RG_GIT_COMMIT "unknown"
#endif

namespace rg::cli {

std::string VersionText() {
#if defined(__clang__)
  const std::string compiler = StrCat("clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  const std::string compiler = StrCat("GCC ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#else
  const std::string compiler = "unknown compiler";
#endif
  return StrCat("rgemma 0.1.0 (commit ", RG_GIT_COMMIT, ")\n", "compiler: ", compiler, ", C++", __cplusplus / 100 % 100,
                "\n", "SIMD: kernels built for scalar, avx2, avx512; this CPU: ", IsaName(HardwareIsa()),
                HardwareHasAvx512Bf16() ? " (+avx512_bf16)" : "", "; in use: ", IsaName(ActiveIsa()),
                " (RG_ISA lowers it)");
}

}  // namespace rg::cli
