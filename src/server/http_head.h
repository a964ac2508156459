// The framing of one HTTP/1.1 request, decided from the bytes received so
// far and before cpp-httplib parses the request: where the head ends, how
// long the body is, whether the client waits for "100 Continue", and the
// refusals that must come at once, before any body is read: 413 for a
// Content-Length over the limit (also with Expect: 100-continue, so no
// "100 Continue" invites the upload), 400 for two different Content-Length
// headers or a Transfer-Encoding beside one, 431 / 414 for oversized heads.
//
// It is stricter than httplib wherever the two could read the same bytes
// differently (bare LF line ends, whitespace before ':', folded lines, a
// Content-Length that is not all digits: httplib percent-decodes header
// values), so that the request both see is the same one and no second
// request can hide in a body. No I/O: server/connections.h feeds it, and
// tests/fuzz/http_request_fuzzer.cc fuzzes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rg::server {

struct HeadLimits {
  size_t max_head_bytes = 64u << 10;  // request line + headers (431 beyond)
  size_t max_line_bytes = 8192;       // one line, CRLF included: httplib's own limit (414 / 431 beyond)
  size_t max_headers = 128;           // header lines (431 beyond)
  size_t max_body_bytes = 8u << 20;   // Content-Length (413 beyond)
};

struct RequestHead {
  enum class State {
    kIncomplete,  // no blank line yet and no limit exceeded: wait for more bytes
    kReady,       // the head is complete and acceptable
    kRefused,     // answer `status` with `error` and close the connection
  };
  State state = State::kIncomplete;
  size_t head_bytes = 0;        // kReady: bytes through the blank line
  bool chunked = false;         // Transfer-Encoding: chunked (length unknown)
  uint64_t content_length = 0;  // otherwise the body's length (0 without the header)
  // Expect: 100-continue, and that header line's bytes [expect_begin,
  // expect_end) in the head (the reader answers the expectation itself).
  bool expect_continue = false;
  size_t expect_begin = 0, expect_end = 0;
  int status = 0;       // kRefused: 400, 413, 414, 417, 431, 501 or 505
  std::string error;    // kRefused: what is wrong, one line for the client
  std::string method;   // once the request line was read (for the log)
  std::string target;
};

// Reads the head at the start of `received` (bytes of one connection after
// the previous request). Cheap to call again as more bytes arrive.
RequestHead ParseRequestHead(std::string_view received, const HeadLimits& limits);

}  // namespace rg::server
