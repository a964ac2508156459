// Builds a Grammar (grammar.h) from rules written as sequences of symbols.
// Used by the GBNF parser; the JSON-Schema compiler goes through GBNF text.
// It owns the desugaring shared by every front end:
//   * string literals -> one byte terminal per UTF-8 byte;
//   * code-point classes -> one byte terminal (ASCII only) or a generated
//     rule of UTF-8 byte sequences (utf8_ranges.h), one per distinct class;
//   * x{m,n}, x*, x+, x? -> generated right-recursive rules
//       x*      -> S ::= x S | ""          (tail call: the stack stays flat)
//       x{0,k}  -> O_k ::= x O_(k-1) | ""  (k nested optional rules)
//       x{m,n}  -> x ... x (m times) then O_(n-m) (or S when unbounded).
// Build() runs the checks listed in grammar.h and the size limits below;
// every failure is an rg::Error naming the rule and its source position.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sampling/grammar/grammar.h"
#include "sampling/grammar/utf8_ranges.h"

namespace rg {

// Limits that bound compile time and memory for untrusted grammars.
inline constexpr int kGrammarMaxRepeat = 1000;          // m and n in x{m,n}
inline constexpr size_t kGrammarMaxElements = 1 << 20;  // elements after desugaring
inline constexpr size_t kGrammarMaxRules = 1 << 17;

struct SourcePos {
  int line = 0, col = 0;  // 1-based; line 0 = not from source text
};

struct GrammarSymbol {
  bool is_rule;
  uint32_t id;  // rule index if is_rule, else byte-set index
};
using GrammarSequence = std::vector<GrammarSymbol>;

class GrammarBuilder {
 public:
  // `source` names the input in errors ("gbnf", "json_schema", ...).
  explicit GrammarBuilder(std::string source);

  // The rule called `name`, created undefined on first mention; `where` is
  // kept (first mention only) for the "undefined rule" error.
  uint32_t Rule(std::string_view name, SourcePos where);
  // Defines a rule created by Rule(). Throws if it is already defined.
  void Define(uint32_t rule, std::vector<GrammarSequence> alts, SourcePos where);

  // A terminal matching one byte of `set` (must be non-empty).
  GrammarSymbol Bytes(const ByteSet& set);
  // Appends one terminal per byte of `bytes` to *seq.
  void AppendLiteral(std::string_view bytes, GrammarSequence* seq);
  // One code point from `ranges` (or, if negated, from its complement).
  // Throws if the class is empty.
  GrammarSymbol CharClass(std::vector<CodepointRange> ranges, bool negated, SourcePos where);
  // A generated rule `<base>_<n>` ::= alts.
  GrammarSymbol Group(std::string_view base, std::vector<GrammarSequence> alts, SourcePos where);
  // `item` repeated min..max times (max < 0: unbounded).
  GrammarSymbol Repeat(std::string_view base, GrammarSequence item, int min, int max,
                       SourcePos where);

  // Checks and flattens. `root` must name a defined rule.
  Grammar Build(std::string_view root);

 private:
  struct RuleDef {
    std::string name;
    std::vector<GrammarSequence> alts;
    bool defined = false;
    SourcePos defined_at, first_use;
  };
  struct RepeatSite {
    uint32_t item_rule;  // rule holding the repeated item
    SourcePos where;
  };

  uint32_t NewRule(std::string name);
  uint32_t NewAux(std::string_view base, SourcePos where);  // undefined "<base>_<n>"
  uint32_t NewAux(std::string_view base, std::vector<GrammarSequence> alts, SourcePos where);
  std::string Where(SourcePos p) const;
  void CheckSize() const;

  // Checks (grammar_checks.cc).
  std::vector<bool> Reachable(uint32_t root) const;
  // Least fixpoint: a rule is marked once some alternative has every symbol
  // s with ok(s, marked).
  std::vector<bool> Fixpoint(
      const std::function<bool(const GrammarSymbol&, const std::vector<bool>&)>& ok) const;
  std::vector<bool> Nullable() const;
  void CheckRepeats(const std::vector<bool>& nullable, const std::vector<bool>& reachable) const;
  void CheckLeftRecursion(const std::vector<bool>& nullable,
                          const std::vector<bool>& reachable) const;
  void CheckProductive(const std::vector<bool>& reachable) const;

  std::string source_;
  std::vector<RuleDef> rules_;                              // [n_rules]
  std::unordered_map<std::string, uint32_t> by_name_;       // rule name -> index
  std::vector<ByteSet> byte_sets_;                          // [n_byte_sets]
  std::map<ByteSet, uint32_t> byte_set_ids_;                // byte set -> index
  std::map<std::vector<uint32_t>, GrammarSymbol> classes_;  // normalized (lo, hi, ...) -> symbol
  std::vector<RepeatSite> repeats_;
  size_t n_symbols_ = 0;  // symbols in all alternatives so far (size limit)
};

}  // namespace rg
