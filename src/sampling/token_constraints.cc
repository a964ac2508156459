#include "sampling/token_constraints.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace rg {

TokenConstraints::TokenConstraints(std::span<const LogitBias> bias, const GrammarConstraint& grammar,
                                   int64_t vocab_size)
    : bias_(bias.begin(), bias.end()), vocab_(vocab_size) {
  ValidateLogitBias(bias_, vocab_size);
  if (grammar) {
    RG_CHECK(grammar.trie, "structured output: the model has no token trie (no tokenizer)");
    RG_CHECK(grammar.trie->vocab_size() <= vocab_size, "structured output: the tokenizer has ",
             grammar.trie->vocab_size(), " tokens but the model only ", vocab_size);
    matcher_.emplace(grammar.grammar, grammar.trie);
  }
  if (!bias_.empty() || matcher_) row_.resize(size_t(vocab_size));
}

const float* TokenConstraints::Apply(const float* logits) {
  if (row_.empty()) return logits;
  std::copy(logits, logits + vocab_, row_.begin());
  ApplyLogitBias(bias_, row_.data());
  if (matcher_) {
    matcher_->MaskLogits(row_.data());
    // Ids the tokenizer does not have (a model vocabulary padded past it) are never text.
    std::fill(row_.begin() + matcher_->vocab_size(), row_.end(), -std::numeric_limits<float>::infinity());
  }
  return row_.data();
}

void TokenConstraints::Accept(int32_t id) {
  if (matcher_) matcher_->AcceptToken(id);
}

}  // namespace rg
