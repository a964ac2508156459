// Under a limit on processes/threads (ulimit -u), a command that cannot get
// the compute threads it asks for fails with a one-line error; it never
// aborts ("terminate called without an active exception"). The HTTP
// server's connection threads are covered in tests/server/limits.test.mjs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "thread_limit.h"
#include "subprocess.h"
#include "test_paths.h"

namespace rg::test {
namespace {

using ::testing::HasSubstr;

TEST(ThreadLimit, TooManyComputeThreadsIsAnError) {
  const std::string bin = ForAnyUser(kBin), tiny = ForAnyUser(kTiny);
  for (const std::string& cmd : std::vector<std::string>{" generate -m " + tiny + " --prompt-ids 2,3 -n 2 --print-ids --threads 100",
                                " serve -m " + tiny + " --port 0 --threads 100"}) {
    const CommandResult r = RunCommand("(" + UnderThreadLimit(30) + bin + cmd + " 2>&1 >/dev/null)");
    EXPECT_EQ(r.status, 1) << cmd << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("cannot start 100 compute threads")) << cmd;
    EXPECT_THAT(r.output, HasSubstr("--threads")) << cmd;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  // The same limit with threads to spare works.
  const CommandResult ok = RunCommand(UnderThreadLimit(30) + bin + " generate -m " + tiny +
                                      " --prompt-ids 2,3 -n 2 --print-ids --threads 4 -q");
  EXPECT_EQ(ok.status, 0) << ok.output;
}

}  // namespace
}  // namespace rg::test
