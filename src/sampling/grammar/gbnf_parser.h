// GBNF (llama.cpp's grammar format, the `grammar` field of llama-server) ->
// Grammar (grammar.h).
//
// Supported syntax:
//   name ::= alternatives          rule; names are [a-zA-Z0-9-]+; "root" starts
//   a b c                          sequence
//   a | b                          alternatives
//   ( ... )                        grouping
//   x*  x+  x?  x{m}  x{m,}  x{m,n}   repetition (m, n <= 1000)
//   "text"                         literal (UTF-8)
//   [a-z0-9_] [^"\\]               character class over code points, negation
//   .                              any character
//   # ...                          comment to the end of the line
// Escapes in literals and classes: \n \r \t \\ \" \[ \] \xHH \uHHHH
// \UHHHHHHHH, and a backslash before any other ASCII punctuation.
// Rules may span lines: a rule ends where the next `name ::=` begins.
// Not supported (error): token references <...> / <[id]>, single-quoted
// literals, left recursion (`expr ::= expr "+" term`; write
// `expr ::= term ("+" term)*`).
//
// Every malformed input throws rg::Error with one line
//   "<source>:<line>:<col>: <what was found>, expected <what>".
#pragma once

#include <string_view>

#include "sampling/grammar/grammar.h"

namespace rg {

inline constexpr size_t kGbnfMaxBytes = 1 << 20;  // grammar text size limit
inline constexpr int kGbnfMaxNesting = 100;       // parenthesis depth limit

// `source` names the text in error messages.
Grammar ParseGbnf(std::string_view text, std::string_view source = "gbnf");

}  // namespace rg
