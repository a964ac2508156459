// Helpers shared by the grammar tests (grammar_*_test.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "sampling/grammar/gbnf_parser.h"
#include "sampling/grammar/json_schema.h"
#include "sampling/grammar/lazy_dfa.h"

namespace rg::test {

enum class Match { kRejected, kPrefix, kComplete };

inline const char* MatchName(Match m) {
  return m == Match::kRejected ? "rejected" : m == Match::kPrefix ? "prefix" : "complete";
}

// How `grammar` takes `text`: rejected, a proper prefix of a match, or a
// complete match (possibly also a prefix of a longer one).
inline Match MatchText(const std::shared_ptr<const Grammar>& grammar, std::string_view text) {
  LazyDfa dfa(grammar);
  LazyDfa::StateId s = dfa.Start();
  for (char c : text) {
    s = dfa.Step(s, uint8_t(c));
    if (s == LazyDfa::kDead) return Match::kRejected;
  }
  return dfa.CanEnd(s) ? Match::kComplete : Match::kPrefix;
}

inline std::shared_ptr<const Grammar> Gbnf(std::string_view text) {
  return std::make_shared<const Grammar>(ParseGbnf(text));
}

inline std::shared_ptr<const Grammar> Schema(std::string_view schema_json) {
  return std::make_shared<const Grammar>(CompileJsonSchemaText(schema_json));
}

// The rg::Error message `f` throws, or "(no error)".
inline std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace rg::test
