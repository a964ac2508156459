// The input lines of `rgemma chat`. On a terminal (stdin and stderr both
// TTYs), libedit edits them: arrow keys, Home/End, Ctrl-A/E/K/W, and a
// history that Up/Down recall. Anything else (a pipe, a file) reads plain
// lines, so scripts drive the chat byte for byte. Either way a
// line never carries terminal control bytes (see StripTerminalControls), and
// Ctrl-C (cli/interrupt.h) ends a read at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace rg::cli {

class LineInput {
 public:
  enum class Result { kLine, kEof, kInterrupted };
  virtual ~LineInput() = default;

  // One line without its end of line. `prompt` is shown first on a terminal.
  virtual Result Read(const char* prompt, std::string* line) = 0;
  // True when reading from a terminal (prompts are shown).
  virtual bool interactive() const = 0;

  // libedit when `edit` and stdin and stderr are terminals; plain reads otherwise.
  static std::unique_ptr<LineInput> ForStdin(bool edit);
};

// `s` without terminal control sequences and control characters: ESC
// sequences (CSI "ESC [ ... final", SS3 "ESC O x", "ESC x"), C0 controls but
// tab, DEL, and C1 controls (U+0080..U+009F). Text typed at a terminal can
// hold them (an unbound function key, a paste); the model never should.
std::string StripTerminalControls(std::string_view s);

}  // namespace rg::cli
