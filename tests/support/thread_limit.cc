#include "thread_limit.h"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
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

std::string ForAnyUser(const std::string& path) {
  namespace fs = std::filesystem;
  static std::map<std::string, std::string> copies;
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  if (auto it = copies.find(path); it != copies.end()) return it->second;
  static const struct Dir {
    fs::path path = fs::temp_directory_path() / ("rg_any_user_" + std::to_string(getpid()));
    ~Dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } tmp;
  const fs::path& dir = tmp.path;
  fs::create_directories(dir);
  const fs::path copy = dir / (std::to_string(copies.size()) + "_" + fs::path(path).filename().string());
  fs::remove_all(copy);
  fs::copy(path, copy, fs::copy_options::recursive);
  // rwx for the owner, r(x) for everyone, all the way down.
  for (const fs::path& p : {dir, copy}) fs::permissions(p, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  if (fs::is_directory(copy))
    for (const auto& e : fs::recursive_directory_iterator(copy))
      fs::permissions(e.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read |
                                    (e.is_directory() ? fs::perms::group_exec | fs::perms::others_exec : fs::perms::none));
  return copies[path] = copy.string();
}

std::string UnderThreadLimit(int nproc) {
  if (geteuid() == 0) {
    const int uid = 40000 + getpid() % 20000;  // unused by anything else on a test machine
    return "prlimit --nproc=" + std::to_string(nproc) + " setpriv --reuid=" + std::to_string(uid) +
           " --regid=" + std::to_string(uid) + " --clear-groups -- ";
  }
  return "prlimit --nproc=" + std::to_string(ThreadsOfUser(getuid()) + nproc) + " -- ";
}

}  // namespace rg::test
