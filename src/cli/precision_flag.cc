#include "cli/precision_flag.h"

namespace rg::cli {

void AddPrecisionFlag(CLI::App* cmd, std::string* precision) {
  cmd->add_option("--precision", *precision,
                  "bf16 weights: exact = f32 activations (default, what the reference computes for the "
                  "fixtures); fast = bf16 activations in bf16 products of 12+ rows")
      ->check(CLI::IsMember({"exact", "fast"}))
      ->capture_default_str();
}

KernelOptions KernelOptionsFor(const std::string& precision) {
  KernelOptions o;
  o.precision = precision == "fast" ? MatMulPrecision::kFast : MatMulPrecision::kExact;
  return o;
}

}  // namespace rg::cli
