// llama.cpp's multi-letter single-dash flags (-np, -ngl, -sys, ...). CLI11
// reads "-ngl 99" as the short option -n with the value "gl" and answers
// with a confusing conversion error; so before parsing, the ones that have
// an rgemma equivalent are rewritten to it (-np -> --parallel; -sys ->
// --system in chat) and the others are refused with what to do instead:
//   unknown option -ngl (rgemma runs on the CPU)
#pragma once

#include <string>
#include <vector>

namespace rg::cli {

// args: argv[1..] (the subcommand first). Throws rg::Error with the message.
std::vector<std::string> RewriteLlamaFlags(std::vector<std::string> args);

}  // namespace rg::cli
