// Cost of constrained decoding on the real Gemma vocabulary (256k tokens):
// trie build at load, then per-token mask cost along realistic generation
// traces (a schema-valid JSON document tokenized by the real tokenizer, fed
// token by token: mask, then accept).
//   bench_grammar [tokenizer=models/tokenizer/tokenizer.model] [reps=5]
// Times are this thread's CPU time (the machine's cores are shared).
//   mask      = GrammarMatcher::MaskLogits as a sampler step calls it (cache on)
//   walk      = the trie walk alone for the same states (mask cache bypassed,
//               DFA transitions warm): the cost of a state seen the first time
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "sampling/grammar/json_schema.h"
#include "sampling/grammar/matcher.h"
#include "sampling/grammar/token_mask.h"
#include "sampling/grammar/token_trie.h"
#include "tokenizer/grammar_vocab.h"
#include "tokenizer/tokenizer.h"

using namespace rg;

namespace {

double CpuNow() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

struct Case {
  const char* name;
  const char* schema;    // "" = json_object mode
  const char* document;  // a valid output, as a model might write it
};

const Case kCases[] = {
    {"person (flat object)",
     R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
        "email":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}}},
        "required":["name","age"]})",
     "{\n  \"name\": \"Ada Lovelace\",\n  \"age\": 36,\n  \"email\": \"ada@example.org\",\n"
     "  \"tags\": [\"mathematician\", \"writer\", \"analytical engine\"]\n}"},
    {"order (nested, enum, numbers)",
     R"({"type":"object","properties":{
        "id":{"type":"integer","minimum":1},
        "status":{"enum":["pending","shipped","delivered"]},
        "customer":{"type":"object","properties":{"name":{"type":"string"},
                    "address":{"type":"object","properties":{"city":{"type":"string"},
                    "zip":{"type":"string"}},"required":["city"]}},"required":["name"]},
        "items":{"type":"array","minItems":1,"maxItems":10,"items":{"type":"object",
                 "properties":{"sku":{"type":"string"},"qty":{"type":"integer"},
                 "price":{"type":"number"}},"required":["sku","qty","price"]}}},
        "required":["id","status","items"]})",
     R"({"id": 1042, "status": "shipped", "customer": {"name": "Grace Hopper", "address": {"city": "Arlington", "zip": "22201"}}, "items": [{"sku": "KB-101", "qty": 2, "price": 49.99}, {"sku": "MS-7", "qty": 1, "price": 19.5}]})"},
    {"json_object mode", "",
     R"({"title": "Structured output", "version": 3, "draft": false, "authors": ["lead", "grammar"], "meta": {"lines": 1200, "ratio": 0.25, "notes": null}})"},
    {"anyOf / nullable",
     R"({"type":"object","properties":{"ok":{"type":"boolean"},
        "result":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"null"}]},
        "error":{"type":["string","null"]}},"required":["ok","result","error"]})",
     R"({"ok": true, "result": 3.14159, "error": null})"},
    {"long string value",
     R"({"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]})",
     R"({"summary": "RecurrentGemma is a family of open models built on Griffin, which mixes gated linear recurrences with local sliding-window attention. Because the recurrent state has a fixed size, memory use does not grow with the length of the sequence, and generation speed stays constant on long inputs. This summary is long on purpose: most of its tokens are generated inside one JSON string, the state a structured answer spends most of its time in."})"},
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string path = argc > 1 ? argv[1] : "models/tokenizer/tokenizer.model";
    const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
    const auto tok = Tokenizer::Load(path);

    double t0 = CpuNow();
    const TokenVocab vocab = MakeGrammarVocab(*tok);
    const double t_vocab = CpuNow() - t0;
    t0 = CpuNow();
    const auto trie = std::make_shared<const TokenTrie>(vocab);
    const double t_trie = CpuNow() - t0;
    std::printf(
        "vocab %d tokens: vocab bytes %.1f ms, trie build %.1f ms, %zu nodes, max depth %zu, "
        "%.1f MB\n",
        trie->vocab_size(), t_vocab * 1e3, t_trie * 1e3, trie->nodes().size(), trie->max_depth(),
        double(trie->memory_bytes()) / 1e6);

    std::vector<float> logits(size_t(trie->vocab_size()));
    std::vector<uint64_t> bits(TokenMaskWords(trie->vocab_size()));
    std::printf("%-32s %6s %9s %9s %9s %9s %9s %9s\n", "schema", "tokens", "compile", "mask med",
                "mask p99", "mask max", "walk med", "walk max");
    std::vector<double> all_mask, all_walk;
    for (const Case& c : kCases) {
      t0 = CpuNow();
      const auto grammar = std::make_shared<const Grammar>(
          *c.schema ? CompileJsonSchemaText(c.schema) : JsonObjectGrammar());
      const double t_compile = CpuNow() - t0;
      const std::vector<int> ids = tok->Encode(c.document);
      std::vector<double> mask_ms, walk_ms;
      for (int rep = 0; rep < reps; ++rep) {
        // A fresh matcher per repetition: the first rep pays every cold walk.
        GrammarMatcher m(grammar, trie);
        LazyDfa walk_dfa(grammar);  // a separate DFA for the uncached walks
        LazyDfa::StateId walk_state = walk_dfa.Start();
        std::vector<LazyDfa::StateId> depth(trie->max_depth() + 1);
        for (size_t i = 0; i <= ids.size(); ++i) {
          std::fill(logits.begin(), logits.end(), 0.0f);
          double t = CpuNow();
          m.MaskLogits(logits.data());
          mask_ms.push_back((CpuNow() - t) * 1e3);
          t = CpuNow();
          ComputeTokenMask(walk_dfa, walk_state, *trie, depth.data(), bits.data());
          walk_ms.push_back((CpuNow() - t) * 1e3);
          if (i == ids.size()) break;
          if (!m.IsAllowed(ids[i])) {
            Fail("bench: token ", i, " (", tok->Piece(ids[i]), ") of the '", c.name,
                 "' document is rejected by its grammar");
          }
          m.AcceptToken(ids[i]);
          for (char ch : trie->bytes(ids[i])) walk_state = walk_dfa.Step(walk_state, uint8_t(ch));
        }
        if (!m.CanEnd()) Fail("bench: the '", c.name, "' document is incomplete for its grammar");
      }
      all_mask.insert(all_mask.end(), mask_ms.begin(), mask_ms.end());
      all_walk.insert(all_walk.end(), walk_ms.begin(), walk_ms.end());
      std::printf("%-32s %6zu %7.2fms %7.3fms %7.3fms %7.3fms %7.3fms %7.3fms\n", c.name,
                  ids.size(), t_compile * 1e3, Percentile(mask_ms, 0.5), Percentile(mask_ms, 0.99),
                  Percentile(mask_ms, 1.0), Percentile(walk_ms, 0.5), Percentile(walk_ms, 1.0));
    }
    std::printf("%-32s %6zu %9s %7.3fms %7.3fms %7.3fms %7.3fms %7.3fms\n", "all", all_mask.size(),
                "", Percentile(all_mask, 0.5), Percentile(all_mask, 0.99),
                Percentile(all_mask, 1.0), Percentile(all_walk, 0.5), Percentile(all_walk, 1.0));
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
