// What `rgemma --version` prints: the release, the git commit it was built
// from ("unknown" outside a git checkout; read when CMake configures), the
// compiler, and the SIMD levels (built in, supported by this CPU, in use).
#pragma once

#include <string>

namespace rg::cli {

std::string VersionText();

}  // namespace rg::cli
