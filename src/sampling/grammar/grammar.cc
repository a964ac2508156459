#include "sampling/grammar/grammar.h"

#include <cstdio>

namespace rg {

namespace {

void AppendByte(int b, std::string* out) {
  if (b >= 0x21 && b < 0x7F && b != '[' && b != ']' && b != '\\' && b != '^' && b != '-') {
    out->push_back(char(b));
  } else {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02X", b);
    out->append(buf);
  }
}

void AppendByteSet(const ByteSet& s, std::string* out) {
  out->push_back('[');
  for (int b = 0; b < 256;) {
    if (!s.Test(uint8_t(b))) {
      ++b;
      continue;
    }
    int e = b;
    while (e + 1 < 256 && s.Test(uint8_t(e + 1))) ++e;
    AppendByte(b, out);
    if (e > b) {
      out->push_back('-');
      AppendByte(e, out);
    }
    b = e + 1;
  }
  out->push_back(']');
}

}  // namespace

std::string Grammar::ToString() const {
  std::string out;
  for (const GrammarRule& rule : rules_) {
    out += rule.name;
    out += " ::=";
    for (size_t a = 0; a < rule.alts.size(); ++a) {
      if (a) out += " |";
      for (uint32_t p = rule.alts[a]; elements_[p].kind != GrammarElemKind::kEnd; ++p) {
        out += ' ';
        if (elements_[p].kind == GrammarElemKind::kRule) {
          out += rules_[elements_[p].arg].name;
        } else {
          AppendByteSet(byte_sets_[elements_[p].arg], &out);
        }
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace rg
