// Constrained decoding on the real 256k Gemma vocabulary
// (models/tokenizer/tokenizer.model):
//   * the trie-walk mask equals a brute-force scan of all 256k tokens (a
//     separate DFA stepping each token's bytes) in states met while sampling;
//   * 10 schemas x 100 samples, each token drawn uniformly among the allowed
//     ones: every output is complete, decodes to the same text through the
//     tokenizer, parses as JSON and validates against its schema with
//     python3-jsonschema (an independent validator).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "grammar_test_util.h"
#include "sampling/grammar/matcher.h"
#include "sampling/grammar/token_mask.h"
#include "sampling/grammar/token_trie.h"
#include "subprocess.h"
#include "tokenizer/grammar_vocab.h"
#include "tokenizer/tokenizer.h"

namespace rg::test {
namespace {

const std::string kModelPath = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";

struct Vocab {
  std::unique_ptr<Tokenizer> tok = Tokenizer::Load(kModelPath);
  std::shared_ptr<const TokenTrie> trie = std::make_shared<const TokenTrie>(MakeGrammarVocab(*tok));
};

const Vocab& RealVocab() {
  static const Vocab v;
  return v;
}

// The ten schemas of the randomized test: nesting, arrays with min/max
// items, enums, anyOf, integers / numbers, booleans / null, required and
// optional properties, refs. Strings have a maxLength: under a uniform draw
// over 256k tokens few tokens close a string, so free strings (and free
// object keys) run to thousands of tokens; the oracle test covers those.
const char* const kSchemas[] = {
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
        "age":{"type":"integer","minimum":0,"maximum":150},"email":{"type":"string","maxLength":8}},
        "required":["name","age"]})",
    R"({"type":"object","properties":{"id":{"type":"integer"},
        "status":{"enum":["pending","shipped","delivered"]},
        "items":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"object",
          "properties":{"sku":{"type":"string","maxLength":6},"qty":{"type":"integer","minimum":1},
          "price":{"type":"number"}},"required":["sku","qty"]}}},
        "required":["id","status","items"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"integer","minimum":-50,"maximum":50},
        "minItems":2,"maxItems":5})",
    R"({"type":"object","properties":{"ok":{"type":"boolean"},
        "result":{"anyOf":[{"type":"string","maxLength":5},{"type":"number"},{"type":"null"}]},
        "error":{"type":["null","boolean"]}},"required":["ok","result"]})",
    R"({"type":"object","properties":{"flags":{"type":"array","items":{"type":"boolean"},"maxItems":4},
        "nothing":{"type":"null"},"version":{"const":2},"mode":{"enum":["a",1,null,true]}},
        "required":["flags","version","mode"]})",
    R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string","maxLength":4},
        "c":{"type":"boolean"},"d":{"type":"number"}}})",
    R"({"type":"object","properties":{"id":{"type":"integer","exclusiveMinimum":0},
        "note":{"type":"string","maxLength":3}},"required":["id"],"additionalProperties":false})",
    R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},
        "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"]}},
        "$ref":"#/$defs/node"})",
    R"({"type":"object","properties":{"outer":{"type":"object","properties":{
          "inner":{"type":"object","properties":{"deep":{"type":"array","items":{"type":["integer","null"]},
          "maxItems":3}},"required":["deep"]}},"required":["inner"]},
        "tag":{"type":"string","minLength":1,"maxLength":3}},"required":["outer","tag"]})",
    R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},
          "required":["kind","r"]},
        {"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"integer"},"h":{"type":"integer"}},
          "required":["kind","w","h"]}]})",
};

// Draws uniformly among the set bits (the allowed tokens).
int DrawAllowed(const uint64_t* bits, size_t words, std::mt19937_64& rng) {
  size_t count = 0;
  for (size_t w = 0; w < words; ++w) count += size_t(__builtin_popcountll(bits[w]));
  if (count == 0) return -1;
  size_t k = rng() % count;
  for (size_t w = 0;; ++w) {
    const size_t c = size_t(__builtin_popcountll(bits[w]));
    if (k < c) {
      uint64_t b = bits[w];
      for (size_t i = 0; i < k; ++i) b &= b - 1;
      return int(w * 64 + size_t(__builtin_ctzll(b)));
    }
    k -= c;
  }
}

// Brute force: steps every token's bytes through `dfa` from `s`.
std::vector<uint64_t> BruteForceMask(LazyDfa& dfa, LazyDfa::StateId s, const TokenTrie& trie) {
  std::vector<uint64_t> bits(TokenMaskWords(trie.vocab_size()), 0);
  for (int t = 0; t < trie.vocab_size(); ++t) {
    bool ok = false;
    if (trie.kind(t) == TokenKind::kEnd) ok = dfa.CanEnd(s);
    if (trie.kind(t) == TokenKind::kText && !trie.bytes(t).empty()) {
      LazyDfa::StateId x = s;
      for (char c : trie.bytes(t)) {
        x = dfa.Step(x, uint8_t(c));
        if (x == LazyDfa::kDead) break;
      }
      ok = x != LazyDfa::kDead;
    }
    if (ok) bits[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
  }
  return bits;
}

std::string FirstDifference(const std::vector<uint64_t>& want, const uint64_t* got,
                            const TokenTrie& trie) {
  for (int t = 0; t < trie.vocab_size(); ++t) {
    const bool w = (want[size_t(t) >> 6] >> (t & 63)) & 1, g = (got[t >> 6] >> (t & 63)) & 1;
    if (w != g) {
      return "token " + std::to_string(t) + " '" + std::string(trie.bytes(t)) + "': brute force " +
             (w ? "allows" : "rejects") + " it, the trie walk " + (g ? "allows" : "rejects") +
             " it";
    }
  }
  return "";
}

TEST(GrammarRealVocabTest, TrieWalkEqualsBruteForceInSampledStates) {
  const Vocab& v = RealVocab();
  std::mt19937_64 rng(11);
  const size_t words = TokenMaskWords(v.trie->vocab_size());
  int checked = 0;
  std::vector<std::shared_ptr<const Grammar>> grammars;
  for (const char* s : kSchemas) grammars.push_back(Schema(s));
  grammars.push_back(std::make_shared<const Grammar>(JsonObjectGrammar()));
  grammars.push_back(Schema(R"({"type":"object","properties":{"id":{"type":"integer"}},
                               "additionalProperties":{"type":"boolean"}})"));
  grammars.push_back(Gbnf(R"(root ::= "Answer: " [A-Za-z ]{0,30} ("." | "!") "\n"?)"));
  for (const auto& g : grammars) {
    GrammarMatcher m(g, v.trie);
    LazyDfa oracle(g);  // separate tables: a different interning order
    LazyDfa::StateId os = oracle.Start();
    std::string out;
    for (int step = 0; step < 40 && !m.MustEnd(); ++step) {
      const uint64_t* bits = m.AllowedTokens();
      if (step % 3 == 0) {
        const std::string diff =
            FirstDifference(BruteForceMask(oracle, os, *v.trie), bits, *v.trie);
        ASSERT_EQ(diff, "") << "after '" << out << "'";
        ++checked;
      }
      const int t = DrawAllowed(bits, words, rng);
      ASSERT_GE(t, 0) << "no token allowed after '" << out << "'";
      m.AcceptToken(t);
      if (m.finished()) break;
      for (char c : v.trie->bytes(t)) os = oracle.Step(os, uint8_t(c));
      out += v.trie->bytes(t);
    }
  }
  EXPECT_GT(checked, 60);
}

TEST(GrammarRealVocabTest, RandomSamplesAreValidJsonForTheirSchemas) {
  const Vocab& v = RealVocab();
  const int kSamples = 100, kCap = 3000;
  const size_t words = TokenMaskWords(v.trie->vocab_size());
  std::mt19937_64 rng(2024);
  const std::string stem = testing::TempDir() + "grammar_" + std::to_string(getpid());
  const std::string jsonl = stem + "_samples.jsonl";
  std::ofstream file(jsonl);
  ASSERT_TRUE(file.good()) << jsonl;
  int total_tokens = 0;
  for (const char* schema_text : kSchemas) {
    const auto schema = nlohmann::json::parse(schema_text);
    GrammarMatcher m(Schema(schema_text), v.trie);
    for (int sample = 0; sample < kSamples; ++sample) {
      m.Reset();
      std::string out;
      std::vector<int> ids;
      for (int step = 0; step < kCap && !m.MustEnd(); ++step) {
        const int t = DrawAllowed(m.AllowedTokens(), words, rng);
        ASSERT_GE(t, 0) << "no token allowed after '" << out << "'";
        m.AcceptToken(t);
        if (m.finished()) break;
        ids.push_back(t);
        out += v.trie->bytes(t);
      }
      total_tokens += int(ids.size());
      ASSERT_TRUE(m.CanEnd()) << "incomplete after " << kCap << " tokens: " << out.substr(0, 300);
      ASSERT_EQ(v.tok->Decode(ids), out) << "the vocabulary bytes disagree with Decode";
      nlohmann::json parsed;
      ASSERT_NO_THROW(parsed = nlohmann::json::parse(out)) << out;
      file << nlohmann::json{{"schema", schema}, {"text", out}}.dump() << "\n";
    }
  }
  file.close();
  std::printf("%d samples, %d tokens\n", kSamples * int(std::size(kSchemas)), total_tokens);
  // The independent check: python3-jsonschema (Debian's python3-jsonschema).
  const std::string script =
      "import json, sys\n"
      "import jsonschema\n"
      "bad = 0; n = 0\n"
      "for line in open(sys.argv[1]):\n"
      "    case = json.loads(line); n += 1\n"
      "    doc = json.loads(case['text'])\n"
      "    v = jsonschema.validators.validator_for(case['schema'])(case['schema'])\n"
      "    for e in v.iter_errors(doc):\n"
      "        bad += 1; print('INVALID', case['text'][:200], '--', e.message[:200])\n"
      "print(n, 'documents,', bad, 'invalid')\n"
      "sys.exit(1 if bad or n == 0 else 0)\n";
  const std::string py = stem + "_validate.py";
  std::ofstream(py) << script;
  // Debian's interpreter first: python3-jsonschema installs there.
  const std::string python =
      std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const CommandResult r = RunCommand(python + " " + py + " " + jsonl);
  EXPECT_EQ(r.status, 0) << r.output
                         << "(needs python3-jsonschema: scripts/install-deps.sh installs it)";
  std::printf("%s", r.output.c_str());
  std::filesystem::remove(jsonl);
  std::filesystem::remove(py);
}

}  // namespace
}  // namespace rg::test
