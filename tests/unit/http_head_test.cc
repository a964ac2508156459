// server/http_head.h: the framing decided before httplib sees a request.
#include "server/http_head.h"

#include <gtest/gtest.h>

#include <string>

namespace rg::server {
namespace {

using State = RequestHead::State;

RequestHead Parse(const std::string& bytes, size_t max_body = 1000) {
  HeadLimits lim;
  lim.max_body_bytes = max_body;
  return ParseRequestHead(bytes, lim);
}

TEST(HttpHead, FindsTheEndOfTheHeadAndTheBodyLength) {
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\n\r\n";
  const RequestHead h = Parse(head + "{\"prompt\":1}GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.state, State::kReady) << h.error;
  EXPECT_EQ(h.head_bytes, head.size());
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_FALSE(h.chunked);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/v1/completions");
  EXPECT_EQ(Parse("GET /health HTTP/1.1\r\nHost: x\r\n").state, State::kIncomplete);
  EXPECT_EQ(Parse("GET /hea").state, State::kIncomplete);
}

TEST(HttpHead, ExpectContinueIsLocated) {
  const std::string line = "Expect: 100-Continue\r\n";
  const std::string before = "POST / HTTP/1.1\r\nHost: x\r\n";
  const RequestHead h = Parse(before + line + "Content-Length: 2\r\n\r\n");
  ASSERT_EQ(h.state, State::kReady);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_EQ(h.expect_begin, before.size());
  EXPECT_EQ(h.expect_end, before.size() + line.size());
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nExpect: something\r\n\r\n").status, 417);
}

TEST(HttpHead, RefusalsComeBeforeTheBody) {
  struct Case {
    std::string head;
    int status;
  };
  const Case cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: %31\r\n\r\n", 400},  // httplib would percent-decode it
      {"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n folded: x\r\n\r\n", 400},
      {"POST / HTTP/1.1\nHost: x\n\n", 400},
      {"POST / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"POST / HTTP/2.0\r\n\r\n", 505},
      {"POST /\r\n\r\n", 400},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'b'), 431},
      {"GET / HTTP/1.1\r\n" + std::string(70000 / 10, 'c') + std::string(), 0},  // still one line short of 8 KiB
  };
  for (const Case& c : cases) {
    const RequestHead h = Parse(c.head);
    if (c.status == 0) {
      EXPECT_EQ(h.state, State::kIncomplete) << c.head.substr(0, 60);
      continue;
    }
    EXPECT_EQ(h.state, State::kRefused) << c.head.substr(0, 60);
    EXPECT_EQ(h.status, c.status) << c.head.substr(0, 60) << ": " << h.error;
    EXPECT_FALSE(h.error.empty());
    EXPECT_EQ(h.error.find('\n'), std::string::npos) << h.error;
  }
  // The same length twice is one length.
  const RequestHead twice = Parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n");
  EXPECT_EQ(twice.state, State::kReady);
  EXPECT_EQ(twice.content_length, 5u);
}

TEST(HttpHead, TheWholeHeadIsBounded) {
  std::string head = "GET / HTTP/1.1\r\n";
  while (head.size() < (64u << 10)) head += "X-Filler: " + std::string(100, 'f') + "\r\n";
  const RequestHead h = Parse(head);
  EXPECT_EQ(h.state, State::kRefused);
  EXPECT_EQ(h.status, 431);
}

}  // namespace
}  // namespace rg::server
