#include "subprocess.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace rg::test {

CommandResult RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

CommandResult RunCommandWithInput(const std::string& cmd, const std::string& input) {
  static int counter = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("rg_stdin_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  std::ofstream(path, std::ios::binary) << input;
  CommandResult r = RunCommand(cmd + " < " + path.string());
  std::filesystem::remove(path);
  return r;
}

}  // namespace rg::test
