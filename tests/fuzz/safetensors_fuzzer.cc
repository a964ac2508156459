// libFuzzer target: ParseSafetensors on arbitrary bytes. The only acceptable
// failure is rg::Error; any other exception, crash or sanitizer report is a bug.
// Seed corpus: tests/fuzz/corpus/safetensors (regenerate with
//   unit_tests --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzCorpus').
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rg::ParsedSafetensors p = rg::ParseSafetensors(data, size, "fuzz.safetensors");
    // Whatever was accepted must describe memory inside the input, with sizes
    // consistent with dtype and shape: touch the first and last byte of each
    // tensor so AddressSanitizer checks the bounds.
    const uint8_t* end = data + size;
    volatile uint8_t sink = 0;
    for (const rg::TensorView& t : p.tensors) {
      const uint8_t* b = static_cast<const uint8_t*>(t.data);
      if (b < data || b > end || t.nbytes > size_t(end - b)) std::abort();
      if (uint64_t(t.numel()) * rg::DTypeSize(t.dtype) != t.nbytes) std::abort();
      if (t.nbytes) {
        sink = sink + b[0];
        sink = sink + b[t.nbytes - 1];
      }
      (void)rg::ShapeString(t.shape);
    }
  } catch (const rg::Error&) {
  }
  return 0;
}
