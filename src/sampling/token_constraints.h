// What one sequence may sample, besides what the sampler chain decides:
// `logit_bias` (OpenAI) and a grammar (structured output: a JSON Schema,
// response_format json_object, or GBNF), applied in that order to the
// sequence's own copy of each logits row, as docs/STRUCTURED_OUTPUT.md
// prescribes. The model's row is never written: the engine shares it (a
// snapshot's logits serve every sequence resuming from it), and
// log-probabilities (`logprobs`) are computed from it, so they report the
// model's distribution, not the biased or masked one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sampling/grammar/grammar.h"
#include "sampling/grammar/matcher.h"
#include "sampling/grammar/token_trie.h"
#include "sampling/logit_bias.h"

namespace rg {

// A request's grammar. The Grammar is compiled per request; the TokenTrie is
// built once per model at load and shared by every sequence.
struct GrammarConstraint {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const TokenTrie> trie;
  explicit operator bool() const { return grammar != nullptr; }
};

class TokenConstraints {
 public:
  // Validates the biases and the grammar's vocabulary (rg::Error) against a
  // logits row of vocab_size entries; allocates the row copy if anything applies.
  TokenConstraints(std::span<const LogitBias> bias, const GrammarConstraint& grammar, int64_t vocab_size);

  // The row to sample from: `logits` itself when nothing applies, otherwise
  // the copy with the biases added and every token the grammar does not
  // allow (and every id past the grammar's vocabulary) at -inf.
  const float* Apply(const float* logits);

  // Advances the grammar by the sampled token (no-op without one). Throws
  // rg::Error if the grammar did not allow it.
  void Accept(int32_t id);
  // An end token (EOS, <end_of_turn>) completed the grammar: stop, do not emit it.
  bool finished() const { return matcher_ && matcher_->finished(); }
  // The output is a complete match and no text may follow (a JSON value
  // closed): stop after this token.
  bool MustEnd() const { return matcher_ && matcher_->MustEnd(); }

 private:
  std::vector<LogitBias> bias_;
  std::optional<GrammarMatcher> matcher_;
  std::vector<float> row_;  // [vocab_size] the sampled copy (empty: nothing applies)
  int64_t vocab_;
};

}  // namespace rg
