// Running a command under a limit on processes/threads (RLIMIT_NPROC), as
// `ulimit -u N` would. The limit counts every process of the user and root
// is exempt from it, so as root the command runs as a uid of its own (which
// has no other processes: the count is the command's threads alone).
#pragma once

#include <string>

namespace rg::test {

// A prefix for a shell command: PREFIX + "rgemma ..." runs it with at most
// `nproc` threads of its own. What it runs and reads must be readable by
// anyone: see ForAnyUser.
std::string UnderThreadLimit(int nproc);

// A copy of the file or directory `path` that any user can read (and run),
// made once per process in a temporary directory: the checkout may live
// where other users cannot look (/root).
std::string ForAnyUser(const std::string& path);

}  // namespace rg::test
