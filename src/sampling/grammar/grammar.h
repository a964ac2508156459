// A context-free grammar over BYTES, in the flat form the matcher runs
// (lazy_dfa.h). It is produced by GrammarBuilder (grammar_builder.h) from GBNF
// text (gbnf_parser.h) or a JSON Schema (json_schema.h), and is immutable and
// shareable across threads once built.
//
// Layout (llama.cpp-style): every rule is a list of alternatives; every
// alternative is a run of elements in elements() ending with a kEnd element:
//   rule "root" ::= [{] value [}] | [x]      elements: ... [{] @value [}] END [x] END ...
// A position is an index into elements(); the matcher's parse stacks hold
// positions. Terminals are ByteSets: code-point classes were already lowered to
// UTF-8 byte sequences, so a token may stop inside a multi-byte character.
//
// Guarantees checked when building (so the matcher cannot loop or stall):
// every referenced rule is defined, no rule is left-recursive, no repeated
// item can match the empty string, and every rule reachable from the root can
// complete (derives some finite byte string).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sampling/grammar/byte_set.h"

namespace rg {

enum class GrammarElemKind : uint8_t {
  kBytes,  // one byte from byte_set(arg)
  kRule,   // the rule rules()[arg]
  kEnd,    // end of an alternative of rule arg
};

struct GrammarElement {
  GrammarElemKind kind;
  uint32_t arg;
};

struct GrammarRule {
  std::string name;            // user rule name, or "<base>_<n>" for generated ones
  std::vector<uint32_t> alts;  // [n_alternatives] element index of each alternative's start
};

class Grammar {
 public:
  const std::vector<GrammarElement>& elements() const { return elements_; }
  const ByteSet& byte_set(uint32_t i) const { return byte_sets_[i]; }
  const std::vector<GrammarRule>& rules() const { return rules_; }
  uint32_t root() const { return root_; }

  // Debug listing, one rule per line, in a GBNF-like syntax over bytes:
  //   root ::= [{] value [}] | [x]
  std::string ToString() const;

 private:
  friend class GrammarBuilder;
  std::vector<GrammarElement> elements_;  // [n_elements] all alternatives, each ending in kEnd
  std::vector<ByteSet> byte_sets_;        // [n_byte_sets] distinct terminals
  std::vector<GrammarRule> rules_;        // [n_rules]
  uint32_t root_ = 0;
};

}  // namespace rg
