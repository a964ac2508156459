// libFuzzer target: the grammar front ends and the matcher on arbitrary bytes.
// Input: one mode byte ('s' = JSON Schema, anything else = GBNF), the schema
// or grammar text, a NUL, then bytes to feed the matcher. Compiling may fail
// only with rg::Error; a compiled grammar then runs its DFA over the bytes
// and computes token masks over a small fixed vocabulary, which must agree
// with stepping each token's bytes. Any other exception, crash, sanitizer
// report or hang is a bug. Seeds: tests/fuzz/corpus/grammar/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "sampling/grammar/gbnf_parser.h"
#include "sampling/grammar/json_schema.h"
#include "sampling/grammar/lazy_dfa.h"
#include "sampling/grammar/matcher.h"
#include "sampling/grammar/token_trie.h"

namespace {

const std::shared_ptr<const rg::TokenTrie>& Trie() {
  static const auto trie = [] {
    rg::TokenVocab v;
    for (const char* s :
         {"{", "}",  "\"", "a",    "ab",   "\":",  "},",   " ",        "\n",
          "1", "12", "-",  "true", "null", "\xC3", "\xA9", "\xC3\xA9", "\xE2\x98\x83",
          "[", "]",  ",",  "x",    "\\",   "u",    "0"}) {
      v.bytes.emplace_back(s);
      v.kinds.push_back(rg::TokenKind::kText);
    }
    v.bytes.emplace_back();
    v.kinds.push_back(rg::TokenKind::kEnd);
    v.bytes.emplace_back();
    v.kinds.push_back(rg::TokenKind::kSpecial);
    return std::make_shared<const rg::TokenTrie>(v);
  }();
  return trie;
}

bool Bit(const uint64_t* bits, int t) { return (bits[t >> 6] >> (t & 63)) & 1; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = all.find('\0');
  const std::string_view text = all.substr(0, nul);
  const std::string_view input =
      nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1, 256);
  try {
    const auto grammar = std::make_shared<const rg::Grammar>(
        data[0] == 's' ? rg::CompileJsonSchemaText(text) : rg::ParseGbnf(text));
    (void)grammar->ToString();
    rg::GrammarMatcher m(grammar, Trie());
    rg::LazyDfa probe(grammar);  // separate tables: the mask's oracle
    rg::LazyDfa::StateId ps = probe.Start();
    const rg::TokenTrie& trie = *Trie();
    for (size_t i = 0; i <= input.size(); ++i) {
      const uint64_t* bits = m.AllowedTokens();
      // The mask must equal stepping each token's bytes alone.
      for (int t = 0; t < trie.vocab_size(); ++t) {
        bool want = false;
        if (trie.kind(t) == rg::TokenKind::kEnd) want = probe.CanEnd(ps);
        if (trie.kind(t) == rg::TokenKind::kText) {
          rg::LazyDfa::StateId x = ps;
          for (char c : trie.bytes(t)) x = probe.Step(x, uint8_t(c));
          want = x != rg::LazyDfa::kDead;
        }
        if (Bit(bits, t) != want || m.CanEnd() != probe.CanEnd(ps)) std::abort();
      }
      if (i == input.size()) break;
      const bool ok = m.AcceptBytes(input.substr(i, 1));
      ps = probe.Step(ps, uint8_t(input[i]));
      if (ok != (ps != rg::LazyDfa::kDead)) std::abort();
      if (!ok) break;
    }
  } catch (const rg::Error&) {
  }
  return 0;
}
