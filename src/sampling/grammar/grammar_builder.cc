#include "sampling/grammar/grammar_builder.h"

#include <utility>

#include "core/error.h"

namespace rg {

GrammarBuilder::GrammarBuilder(std::string source) : source_(std::move(source)) {}

std::string GrammarBuilder::Where(SourcePos p) const {
  return p.line > 0 ? StrCat(source_, ":", p.line, ":", p.col) : source_;
}

uint32_t GrammarBuilder::NewRule(std::string name) {
  if (rules_.size() >= kGrammarMaxRules) {
    Fail(source_, ": grammar too large: more than ", kGrammarMaxRules,
         " rules after expanding groups and repetitions");
  }
  const uint32_t id = uint32_t(rules_.size());
  by_name_.emplace(name, id);
  rules_.push_back(RuleDef{std::move(name), {}, false, {}, {}});
  return id;
}

uint32_t GrammarBuilder::Rule(std::string_view name, SourcePos where) {
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) return it->second;
  const uint32_t id = NewRule(std::string(name));
  rules_[id].first_use = where;
  return id;
}

void GrammarBuilder::CheckSize() const {
  if (n_symbols_ > kGrammarMaxElements) {
    Fail(source_, ": grammar too large: more than ", kGrammarMaxElements,
         " elements after expanding repetitions (limit on x{m,n} is ", kGrammarMaxRepeat, ")");
  }
}

void GrammarBuilder::Define(uint32_t rule, std::vector<GrammarSequence> alts, SourcePos where) {
  RuleDef& r = rules_[rule];
  if (r.defined) {
    Fail(Where(where), ": rule '", r.name, "' is defined twice (first at line ", r.defined_at.line,
         ")");
  }
  for (const GrammarSequence& s : alts) n_symbols_ += s.size() + 1;
  CheckSize();
  r.alts = std::move(alts);
  r.defined = true;
  r.defined_at = where;
}

uint32_t GrammarBuilder::NewAux(std::string_view base, SourcePos where) {
  // '_' never occurs in user rule names (GBNF names are [a-zA-Z0-9-]).
  std::string name;
  for (size_t n = rules_.size();; ++n) {
    name = StrCat(base, "_", n);
    if (!by_name_.count(name)) break;
  }
  const uint32_t id = NewRule(std::move(name));
  rules_[id].first_use = where;
  return id;
}

uint32_t GrammarBuilder::NewAux(std::string_view base, std::vector<GrammarSequence> alts,
                                SourcePos where) {
  const uint32_t id = NewAux(base, where);
  Define(id, std::move(alts), where);
  return id;
}

GrammarSymbol GrammarBuilder::Bytes(const ByteSet& set) {
  RG_DCHECK(!set.Empty());
  auto [it, inserted] = byte_set_ids_.emplace(set, uint32_t(byte_sets_.size()));
  if (inserted) byte_sets_.push_back(set);
  return GrammarSymbol{false, it->second};
}

void GrammarBuilder::AppendLiteral(std::string_view bytes, GrammarSequence* seq) {
  for (char c : bytes) {
    ByteSet s;
    s.Add(uint8_t(c));
    seq->push_back(Bytes(s));
  }
}

GrammarSymbol GrammarBuilder::CharClass(std::vector<CodepointRange> ranges, bool negated,
                                        SourcePos where) {
  ranges = NormalizeRanges(std::move(ranges));
  if (negated) ranges = ComplementRanges(ranges);
  if (ranges.empty()) Fail(Where(where), ": character class matches no character");
  std::vector<uint32_t> key;
  for (const CodepointRange& r : ranges) key.insert(key.end(), {r.lo, r.hi});
  if (auto it = classes_.find(key); it != classes_.end()) return it->second;

  // Group the UTF-8 patterns: all 1-byte ones become one terminal, and
  // multi-byte patterns with the same continuation bytes share a lead set.
  ByteSet ascii;
  struct Pattern {
    ByteSet lead;
    int len;
    uint8_t lo[3], hi[3];  // continuation byte ranges
  };
  std::vector<Pattern> patterns;
  for (const Utf8Sequence& s : Utf8Sequences(ranges)) {
    if (s.len == 1) {
      ascii.AddRange(s.lo[0], s.hi[0]);
      continue;
    }
    Pattern* match = nullptr;
    for (Pattern& p : patterns) {
      bool same = p.len == s.len;
      for (int k = 1; same && k < s.len; ++k)
        same = p.lo[k - 1] == s.lo[k] && p.hi[k - 1] == s.hi[k];
      if (same) match = &p;
    }
    if (!match) {
      patterns.push_back(Pattern{ByteSet{}, s.len, {}, {}});
      match = &patterns.back();
      for (int k = 1; k < s.len; ++k) match->lo[k - 1] = s.lo[k], match->hi[k - 1] = s.hi[k];
    }
    match->lead.AddRange(s.lo[0], s.hi[0]);
  }
  GrammarSymbol sym;
  if (patterns.empty()) {
    sym = Bytes(ascii);
  } else {
    std::vector<GrammarSequence> alts;
    if (!ascii.Empty()) alts.push_back({Bytes(ascii)});
    for (const Pattern& p : patterns) {
      GrammarSequence seq{Bytes(p.lead)};
      for (int k = 0; k + 1 < p.len; ++k) {
        ByteSet cont;
        cont.AddRange(p.lo[k], p.hi[k]);
        seq.push_back(Bytes(cont));
      }
      alts.push_back(std::move(seq));
    }
    sym = GrammarSymbol{true, NewAux("char", std::move(alts), where)};
  }
  classes_.emplace(std::move(key), sym);
  return sym;
}

GrammarSymbol GrammarBuilder::Group(std::string_view base, std::vector<GrammarSequence> alts,
                                    SourcePos where) {
  return GrammarSymbol{true, NewAux(base, std::move(alts), where)};
}

GrammarSymbol GrammarBuilder::Repeat(std::string_view base, GrammarSequence item, int min, int max,
                                     SourcePos where) {
  if (min < 0 || min > kGrammarMaxRepeat || max > kGrammarMaxRepeat) {
    Fail(Where(where), ": repetition count above the limit of ", kGrammarMaxRepeat);
  }
  if (max >= 0 && max < min) Fail(Where(where), ": repetition {", min, ",", max, "} has max < min");
  const GrammarSymbol x = item.size() == 1 ? item[0] : Group(base, {std::move(item)}, where);
  if (x.is_rule) repeats_.push_back(RepeatSite{x.id, where});

  GrammarSequence seq(size_t(min), x);
  if (max < 0) {
    const uint32_t star = NewAux(base, where);
    Define(star, {{x, GrammarSymbol{true, star}}, {}}, where);
    seq.push_back(GrammarSymbol{true, star});
  } else if (max > min) {
    uint32_t opt = NewAux(base, {{x}, {}}, where);  // O_1 ::= x | ""
    for (int k = 2; k <= max - min; ++k) {
      opt = NewAux(base, {{x, GrammarSymbol{true, opt}}, {}}, where);
    }
    seq.push_back(GrammarSymbol{true, opt});
  }
  if (seq.size() == 1) return seq[0];
  return Group(base, {std::move(seq)}, where);
}

Grammar GrammarBuilder::Build(std::string_view root) {
  auto it = by_name_.find(std::string(root));
  if (it == by_name_.end() || !rules_[it->second].defined) {
    Fail(source_, ": the grammar has no '", root, "' rule (the start symbol)");
  }
  for (const RuleDef& r : rules_) {
    if (!r.defined) Fail(Where(r.first_use), ": undefined rule '", r.name, "'");
  }
  const uint32_t root_id = it->second;
  const std::vector<bool> reachable = Reachable(root_id);
  const std::vector<bool> nullable = Nullable();
  CheckRepeats(nullable, reachable);
  CheckLeftRecursion(nullable, reachable);
  CheckProductive(reachable);

  Grammar g;
  g.root_ = root_id;
  g.byte_sets_ = byte_sets_;
  g.elements_.reserve(n_symbols_);
  g.rules_.resize(rules_.size());
  for (uint32_t r = 0; r < rules_.size(); ++r) {
    g.rules_[r].name = rules_[r].name;
    for (const GrammarSequence& seq : rules_[r].alts) {
      g.rules_[r].alts.push_back(uint32_t(g.elements_.size()));
      for (const GrammarSymbol& s : seq) {
        g.elements_.push_back({s.is_rule ? GrammarElemKind::kRule : GrammarElemKind::kBytes, s.id});
      }
      g.elements_.push_back({GrammarElemKind::kEnd, r});
    }
  }
  return g;
}

}  // namespace rg
