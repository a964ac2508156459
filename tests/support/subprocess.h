// Running the rgemma CLI from tests, as a user or an outside check would.
#pragma once

#include <string>
#include <utility>

namespace rg::test {

struct CommandResult {
  int status;          // exit status (0 = success)
  std::string output;  // stdout and stderr together, unless stderr is redirected in cmd
};

// Runs `cmd` through /bin/sh; stderr is merged into the output.
CommandResult RunCommand(const std::string& cmd);

// Same, feeding `input` on stdin.
CommandResult RunCommandWithInput(const std::string& cmd, const std::string& input);

}  // namespace rg::test
