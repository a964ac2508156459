// Error handling: every failure a user can cause becomes an rg::Error whose
// message is one line naming the file / tensor / field, what was expected and
// what was found. The CLI catches it at the top and prints it to stderr.
// Hot loops use RG_DCHECK only (compiled out in release builds).
#pragma once

#include <cassert>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rg {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates its arguments with operator<< into one message.
template <class... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class... Args>
[[noreturn]] void Fail(const Args&... args) {
  throw Error(StrCat(args...));
}

// Makes an untrusted string (a client's field name, a file's tensor name)
// safe for a one-line message or log line: control and non-ASCII bytes are
// escaped (\n, \xNN), very long strings are cut.
std::string Printable(std::string_view s, size_t max_len = 160);

}  // namespace rg

#define RG_CHECK(cond, ...)                 \
  do {                                      \
    if (!(cond)) ::rg::Fail(__VA_ARGS__);   \
  } while (0)

#ifdef NDEBUG
#define RG_DCHECK(cond) ((void)0)
#else
#define RG_DCHECK(cond) assert(cond)
#endif
