// rgemma tokenize --tokenizer FILE | --model DIR [--bos]
// contract: JSON Lines {"text": "..."} on stdin -> {"ids": [...]} per line on
// stdout, without BOS unless --bos. A line that is not such an object, or
// whose text is not valid UTF-8, stops with a one-line error naming the line.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_files.h"
#include "core/error.h"

namespace rg::cli {
namespace {

struct TokenizeArgs {
  std::string tokenizer, model;
  bool bos = false;
  size_t max_line_bytes = 64u << 20;
};

void RunTokenize(const TokenizeArgs& a) {
  RG_CHECK(!a.tokenizer.empty() || !a.model.empty(), "give --tokenizer FILE or --model DIR");
  auto tok = LoadTokenizerFor(a.model, a.tokenizer, /*required=*/true);
  std::string line;
  for (int64_t n = 1; std::getline(std::cin, line); ++n) {
    if (line.empty() || line == "\r") continue;
    RG_CHECK(line.size() <= a.max_line_bytes, "stdin line ", n, ": ", line.size(), " bytes, more than the limit of ",
             a.max_line_bytes);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    RG_CHECK(!j.is_discarded(), "stdin line ", n, ": not valid JSON (or not valid UTF-8)");
    RG_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), "stdin line ", n,
             ": expected an object {\"text\": \"...\"}");
    nlohmann::json ids = nlohmann::json::array();
    if (a.bos) ids.push_back(tok->bos_id());
    for (int id : tok->Encode(j["text"].get<std::string>())) ids.push_back(id);
    const std::string out = nlohmann::json{{"ids", ids}}.dump() + "\n";
    WriteStdout(out);
  }
  FlushStdout();
}

}  // namespace

void RegisterTokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "JSON Lines {\"text\"} on stdin to {\"ids\"} on stdout");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model");
  AddModelDirFlag(cmd, &a->model, "Model directory holding tokenizer.model");
  cmd->add_flag("--bos", a->bos, "Prepend BOS (id 2)");
  cmd->callback([a] { RunTokenize(*a); });
}

}  // namespace rg::cli
