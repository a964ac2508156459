#include "sampling/grammar/gbnf_parser.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "sampling/grammar/grammar_builder.h"

namespace rg {

namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class GbnfParser {
 public:
  GbnfParser(std::string_view text, std::string_view source)
      : text_(text), source_(source), builder_(std::string(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Grammar Parse() {
    if (text_.size() > kGbnfMaxBytes) {
      Fail(source_, ": grammar is ", text_.size(), " bytes, above the limit of ", kGbnfMaxBytes);
    }
    SkipSpace();
    while (pos_ < text_.size()) {
      ParseRule();
      SkipSpace();
    }
    return builder_.Build("root");
  }

 private:
  // ---- positions and errors

  SourcePos At(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = size_t(it - line_starts_.begin());                  // 1-based
    return SourcePos{int(line), int(offset - line_starts_[line - 1] + 1)};  // column in bytes
  }

  std::string Found() const {
    if (pos_ >= text_.size()) return "end of input";
    const char c = text_[pos_];
    if (c == '\n') return "end of line";
    if (uint8_t(c) < 0x20 || uint8_t(c) >= 0x7F)
      return StrCat("byte 0x", std::hex, int(uint8_t(c)));
    return StrCat("'", c, "'");
  }

  template <class... Args>
  [[noreturn]] void FailAt(size_t offset, const Args&... args) const {
    const SourcePos p = At(offset);
    Fail(source_, ":", p.line, ":", p.col, ": ", args...);
  }

  // ---- lexing helpers

  void SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view ParseName() {
    const size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // True if a rule definition `name ::=` starts at pos_ (pos_ unchanged).
  bool AtRuleStart() {
    const size_t save = pos_;
    const bool named = !ParseName().empty();
    SkipSpace();
    const bool yes = named && text_.substr(pos_, 3) == "::=";
    pos_ = save;
    return yes;
  }

  // Decodes one UTF-8 character of the grammar text at pos_.
  uint32_t ParseUtf8() {
    const size_t start = pos_;
    const uint8_t b0 = uint8_t(text_[pos_++]);
    if (b0 < 0x80) return b0;
    const int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
    uint32_t cp = len == 4 ? b0 & 0x07 : len == 3 ? b0 & 0x0F : b0 & 0x1F;
    bool ok = len >= 2 && b0 >= 0xC2 && b0 <= 0xF4;
    for (int k = 1; ok && k < len; ++k) {
      ok = pos_ < text_.size() && (uint8_t(text_[pos_]) & 0xC0) == 0x80;
      if (ok) cp = (cp << 6) | (uint8_t(text_[pos_++]) & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (!ok || cp < kMin[len] || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
      FailAt(start, "invalid UTF-8 in the grammar text");
    }
    return cp;
  }

  uint32_t ParseHex(int digits, size_t esc_start) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const int h = pos_ < text_.size() ? HexValue(text_[pos_]) : -1;
      if (h < 0) FailAt(pos_, "found ", Found(), " in an escape, expected ", digits, " hex digits");
      v = v * 16 + uint32_t(h);
      ++pos_;
    }
    if (v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) {
      FailAt(esc_start, "escape is not a valid code point (above U+10FFFF or a surrogate)");
    }
    return v;
  }

  // One character of a literal or class, escapes decoded. pos_ < size.
  uint32_t ParseChar() {
    if (text_[pos_] != '\\') return ParseUtf8();
    const size_t start = pos_++;
    if (pos_ >= text_.size()) FailAt(start, "backslash at end of input");
    const char c = text_[pos_++];
    switch (c) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'x': return ParseHex(2, start);
      case 'u': return ParseHex(4, start);
      case 'U': return ParseHex(8, start);
      default:
        if (std::strchr("\\\"'[]-^/.|()*+?{}#<>", c) != nullptr && c != '\0') return uint8_t(c);
        FailAt(start, "unknown escape '\\", c, "', expected one of \\n \\r \\t \\\\ \\\" \\[ \\] ",
               "\\xHH \\uHHHH \\UHHHHHHHH");
    }
  }

  // ---- grammar structure

  void ParseRule() {
    const size_t start = pos_;
    const std::string_view name = ParseName();
    if (name.empty()) FailAt(pos_, "found ", Found(), ", expected a rule name");
    SkipSpace();
    if (text_.substr(pos_, 3) != "::=") {
      FailAt(pos_, "found ", Found(), " after rule name '", name, "', expected '::='");
    }
    pos_ += 3;
    SkipSpace();
    const SourcePos where = At(start);
    const uint32_t rule = builder_.Rule(name, where);
    rule_name_ = std::string(name);
    std::vector<GrammarSequence> alts = ParseAlternatives(0);
    // The sequence stops at a new rule, the end, or an unmatched ')'.
    if (pos_ < text_.size() && text_[pos_] == ')') FailAt(pos_, "found ')' without a matching '('");
    builder_.Define(rule, std::move(alts), where);
  }

  std::vector<GrammarSequence> ParseAlternatives(int depth) {
    std::vector<GrammarSequence> alts;
    alts.push_back(ParseSequence(depth));
    while (pos_ < text_.size() && text_[pos_] == '|') {
      ++pos_;
      SkipSpace();
      alts.push_back(ParseSequence(depth));
    }
    return alts;
  }

  GrammarSequence ParseSequence(int depth) {
    GrammarSequence seq;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '|' || c == ')') break;
      if (IsNameChar(c) && AtRuleStart()) break;
      const size_t item_start = pos_;
      GrammarSequence item = ParsePrimary(depth);
      SkipSpace();
      while (pos_ < text_.size() && std::strchr("*+?{", text_[pos_]) != nullptr) {
        item = {ParsePostfix(std::move(item), item_start)};
        SkipSpace();
      }
      seq.insert(seq.end(), item.begin(), item.end());
    }
    return seq;
  }

  GrammarSymbol ParsePostfix(GrammarSequence item, size_t item_start) {
    const size_t op_pos = pos_;
    const SourcePos where = At(item_start);
    const char op = text_[pos_++];
    if (op == '*') return builder_.Repeat(rule_name_, std::move(item), 0, -1, where);
    if (op == '+') return builder_.Repeat(rule_name_, std::move(item), 1, -1, where);
    if (op == '?') return builder_.Repeat(rule_name_, std::move(item), 0, 1, where);
    SkipSpace();
    const int min = ParseCount(op_pos);
    int max = min;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      SkipSpace();
      max = pos_ < text_.size() && text_[pos_] == '}' ? -1 : ParseCount(op_pos);
      SkipSpace();
    }
    if (pos_ >= text_.size() || text_[pos_] != '}') {
      FailAt(pos_, "found ", Found(), " in a repetition, expected '}' (as in x{2,5})");
    }
    ++pos_;
    if (max >= 0 && max < min) FailAt(op_pos, "repetition {", min, ",", max, "} has max < min");
    return builder_.Repeat(rule_name_, std::move(item), min, max, where);
  }

  int ParseCount(size_t op_pos) {
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') {
      FailAt(pos_, "found ", Found(), " in a repetition, expected a number");
    }
    long v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      v = v * 10 + (text_[pos_++] - '0');
      if (v > kGrammarMaxRepeat) {
        FailAt(op_pos, "repetition count above the limit of ", kGrammarMaxRepeat);
      }
    }
    return int(v);
  }

  GrammarSequence ParsePrimary(int depth) {
    const size_t start = pos_;
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      std::string bytes;
      while (true) {
        if (pos_ >= text_.size()) FailAt(start, "unterminated string literal, expected '\"'");
        if (text_[pos_] == '"') break;
        AppendUtf8(ParseChar(), &bytes);
      }
      ++pos_;
      GrammarSequence seq;
      builder_.AppendLiteral(bytes, &seq);
      return seq;
    }
    if (c == '[') return {ParseClass()};
    if (c == '.') {
      ++pos_;
      return {builder_.CharClass({{0, kMaxCodepoint}}, false, At(start))};
    }
    if (c == '(') {
      if (depth >= kGbnfMaxNesting) {
        FailAt(start, "parentheses nested deeper than ", kGbnfMaxNesting);
      }
      ++pos_;
      SkipSpace();
      std::vector<GrammarSequence> alts = ParseAlternatives(depth + 1);
      if (pos_ >= text_.size() || text_[pos_] != ')') {
        FailAt(pos_, "found ", Found(), ", expected ')' to close the '(' at ", At(start).line, ":",
               At(start).col);
      }
      ++pos_;
      if (alts.size() == 1) return std::move(alts[0]);
      return {builder_.Group(rule_name_, std::move(alts), At(start))};
    }
    if (IsNameChar(c)) {
      const std::string_view name = ParseName();
      return {GrammarSymbol{true, builder_.Rule(name, At(start))}};
    }
    if (c == '<') FailAt(start, "token references <...> are not supported");
    if (c == '\'') FailAt(start, "found \"'\", expected a double-quoted literal \"...\"");
    FailAt(start, "found ", Found(), ", expected a literal, [class], rule name, '(' or '.'");
  }

  GrammarSymbol ParseClass() {
    const size_t start = pos_++;
    bool negated = false;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    while (true) {
      if (pos_ >= text_.size()) FailAt(start, "unterminated character class, expected ']'");
      if (text_[pos_] == ']') break;
      const size_t item = pos_;
      const uint32_t lo = ParseChar();
      uint32_t hi = lo;
      if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        hi = ParseChar();
        if (hi < lo) FailAt(item, "character range is reversed (end below start)");
      }
      ranges.push_back({lo, hi});
    }
    ++pos_;
    return builder_.CharClass(std::move(ranges), negated, At(start));
  }

  std::string_view text_;
  std::string source_;
  GrammarBuilder builder_;
  std::vector<size_t> line_starts_;  // [n_lines] byte offset of each line
  size_t pos_ = 0;
  std::string rule_name_;  // rule being parsed: base name of generated rules
};

}  // namespace

Grammar ParseGbnf(std::string_view text, std::string_view source) {
  return GbnfParser(text, source).Parse();
}

}  // namespace rg
