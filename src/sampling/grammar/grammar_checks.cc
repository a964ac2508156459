// GrammarBuilder::Build's checks: they guarantee the matcher's closure
// terminates (no left recursion, no repetition of an empty-matching item) and
// that every live parse stack can still reach the end (every reachable rule
// derives some finite string), which makes a token mask exact.
#include <algorithm>
#include <functional>

#include "core/error.h"
#include "sampling/grammar/grammar_builder.h"

namespace rg {

std::vector<bool> GrammarBuilder::Reachable(uint32_t root) const {
  std::vector<bool> seen(rules_.size(), false);
  std::vector<uint32_t> todo{root};
  seen[root] = true;
  while (!todo.empty()) {
    const uint32_t r = todo.back();
    todo.pop_back();
    for (const GrammarSequence& seq : rules_[r].alts) {
      for (const GrammarSymbol& s : seq) {
        if (s.is_rule && !seen[s.id]) {
          seen[s.id] = true;
          todo.push_back(s.id);
        }
      }
    }
  }
  return seen;
}

std::vector<bool> GrammarBuilder::Fixpoint(
    const std::function<bool(const GrammarSymbol&, const std::vector<bool>&)>& ok) const {
  std::vector<bool> marked(rules_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < rules_.size(); ++r) {
      if (marked[r]) continue;
      for (const GrammarSequence& seq : rules_[r].alts) {
        if (std::all_of(seq.begin(), seq.end(),
                        [&](const GrammarSymbol& s) { return ok(s, marked); })) {
          marked[r] = changed = true;
          break;
        }
      }
    }
  }
  return marked;
}

std::vector<bool> GrammarBuilder::Nullable() const {
  // Byte terminals are never empty; a rule is, if every symbol of one alternative is.
  return Fixpoint([](const GrammarSymbol& s, const std::vector<bool>& nullable) {
    return s.is_rule && nullable[s.id];
  });
}

void GrammarBuilder::CheckRepeats(const std::vector<bool>& nullable,
                                  const std::vector<bool>& reachable) const {
  for (const RepeatSite& site : repeats_) {
    if (reachable[site.item_rule] && nullable[site.item_rule]) {
      Fail(Where(site.where),
           ": the repeated expression can match the empty string, so it could repeat forever; "
           "make it match at least one character");
    }
  }
}

void GrammarBuilder::CheckLeftRecursion(const std::vector<bool>& nullable,
                                        const std::vector<bool>& reachable) const {
  // Edge a -> b when b can be the first thing a matches (only nullable rules
  // before it). A cycle is left recursion: the closure would never end.
  const size_t n = rules_.size();
  std::vector<std::vector<uint32_t>> first(n);  // [n_rules] rules that can start each rule
  for (uint32_t r = 0; r < n; ++r) {
    if (!reachable[r]) continue;
    for (const GrammarSequence& seq : rules_[r].alts) {
      for (const GrammarSymbol& s : seq) {
        if (!s.is_rule) break;
        first[r].push_back(s.id);
        if (!nullable[s.id]) break;
      }
    }
  }
  // Iterative DFS (grammars may have many rules; no native recursion).
  enum : uint8_t { kNew, kOpen, kDone };
  std::vector<uint8_t> color(n, kNew);
  std::vector<std::pair<uint32_t, size_t>> stack;  // (rule, next edge index)
  for (uint32_t start = 0; start < n; ++start) {
    if (!reachable[start] || color[start] != kNew) continue;
    stack.push_back({start, 0});
    color[start] = kOpen;
    while (!stack.empty()) {
      auto& [r, next] = stack.back();
      if (next == first[r].size()) {
        color[r] = kDone;
        stack.pop_back();
        continue;
      }
      const uint32_t to = first[r][next++];
      if (color[to] == kOpen) {
        std::string cycle;
        bool on = false;
        for (const auto& frame : stack) {
          on = on || frame.first == to;
          if (on) cycle += rules_[frame.first].name + " -> ";
        }
        cycle += rules_[to].name;
        Fail(Where(rules_[to].defined_at), ": rule '", rules_[to].name, "' is left-recursive (",
             cycle, "); rewrite it with repetition, e.g. list ::= item (\",\" item)*");
      }
      if (color[to] == kNew) {
        color[to] = kOpen;
        stack.push_back({to, 0});
      }
    }
  }
}

void GrammarBuilder::CheckProductive(const std::vector<bool>& reachable) const {
  // A rule completes if one alternative has only terminals and completing rules.
  const std::vector<bool> productive =
      Fixpoint([](const GrammarSymbol& s, const std::vector<bool>& done) {
        return !s.is_rule || done[s.id];
      });
  // Report a rule on a cycle of never-completing rules (the cause), found by
  // following, from any such rule, the first never-completing reference.
  for (uint32_t r = 0; r < rules_.size(); ++r) {
    if (!reachable[r] || productive[r]) continue;
    std::vector<bool> seen(rules_.size(), false);
    uint32_t cur = r;
    while (!seen[cur]) {
      seen[cur] = true;
      uint32_t next = cur;  // a rule with no alternative at all is the cause itself
      for (const GrammarSequence& seq : rules_[cur].alts) {
        const auto it = std::find_if(seq.begin(), seq.end(), [&](const GrammarSymbol& s) {
          return s.is_rule && !productive[s.id];
        });
        if (it != seq.end()) {
          next = it->id;
          break;
        }
      }
      cur = next;
    }
    Fail(Where(rules_[cur].defined_at), ": rule '", rules_[cur].name,
         "' can never complete (every alternative needs it again, without end)");
  }
}

}  // namespace rg
