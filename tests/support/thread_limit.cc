#include "thread_limit.h"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>

namespace rg::test {
namespace {

// Threads of all processes of the real uid `uid` right now.
int ThreadsOfUser(uid_t uid) {
  int n = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    bool mine = false;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) == 0) mine = std::strtoul(line.c_str() + 4, nullptr, 10) == uid;
      if (mine && line.rfind("Threads:", 0) == 0) n += std::atoi(line.c_str() + 8);
    }
  }
  closedir(d);
  return n;
}

}  // namespace

std::string UnderThreadLimit(int nproc) {
  if (geteuid() == 0) {
    const int uid = 40000 + getpid() % 20000;  // unused by anything else on a test machine
    return "prlimit --nproc=" + std::to_string(nproc) + " setpriv --reuid=" + std::to_string(uid) +
           " --regid=" + std::to_string(uid) + " --clear-groups -- ";
  }
  return "prlimit --nproc=" + std::to_string(ThreadsOfUser(getuid()) + nproc) + " -- ";
}

}  // namespace rg::test
