#include "server/http_head.h"

#include <cctype>

#include "core/error.h"

namespace rg::server {
namespace {

using State = RequestHead::State;

RequestHead Refuse(RequestHead h, int status, std::string error) {
  h.state = State::kRefused;
  h.status = status;
  h.error = std::move(error);
  return h;
}

// RFC 9110 tchar: the characters of a header name or a method.
bool IsTokenChar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A shortened, printable copy of client bytes for a message.
std::string Excerpt(std::string_view s) { return Printable(s, 40); }

// The request line "METHOD SP TARGET SP HTTP/1.x" (without CRLF).
RequestHead ParseRequestLine(RequestHead h, std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return Refuse(h, 400, "malformed request line '" + Excerpt(line) + "' (expected METHOD TARGET HTTP/1.1)");
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (method.empty() || target.empty())
    return Refuse(h, 400, "malformed request line '" + Excerpt(line) + "' (expected METHOD TARGET HTTP/1.1)");
  for (unsigned char c : method)
    if (!IsTokenChar(c)) return Refuse(h, 400, "malformed method in the request line '" + Excerpt(line) + "'");
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f) return Refuse(h, 400, "malformed target in the request line '" + Excerpt(line) + "'");
  h.method = std::string(method);
  h.target = std::string(target);
  if (version == "HTTP/1.1" || version == "HTTP/1.0") return h;
  if (version.size() == 8 && version.starts_with("HTTP/") && std::isdigit(static_cast<unsigned char>(version[5])) &&
      version[6] == '.' && std::isdigit(static_cast<unsigned char>(version[7])))
    return Refuse(h, 505, "HTTP version " + std::string(version) + " is not supported (HTTP/1.1 only)");
  return Refuse(h, 400, "malformed HTTP version in the request line '" + Excerpt(line) + "'");
}

}  // namespace

RequestHead ParseRequestHead(std::string_view in, const HeadLimits& lim) {
  RequestHead h;
  bool have_length = false, have_te = false;
  size_t headers = 0, pos = 0;
  for (size_t line_no = 0;; ++line_no) {
    const size_t nl = in.find('\n', pos);
    const bool request_line = line_no == 0;
    if (nl == std::string_view::npos) {
      // Incomplete so far: refuse now if no end can come within the limits.
      if (in.size() - pos > lim.max_line_bytes)
        return request_line ? Refuse(h, 414, StrCat("the request line is longer than ", lim.max_line_bytes, " bytes"))
                            : Refuse(h, 431, StrCat("a header line is longer than ", lim.max_line_bytes, " bytes"));
      if (in.size() > lim.max_head_bytes)
        return Refuse(h, 431, StrCat("the request head is larger than ", lim.max_head_bytes, " bytes"));
      return h;
    }
    const std::string_view raw = in.substr(pos, nl + 1 - pos);  // with its line end
    const size_t line_begin = pos;
    pos = nl + 1;
    if (pos > lim.max_head_bytes)
      return Refuse(h, 431, StrCat("the request head is larger than ", lim.max_head_bytes, " bytes"));
    if (raw.size() > lim.max_line_bytes)
      return request_line ? Refuse(h, 414, StrCat("the request line is longer than ", lim.max_line_bytes, " bytes"))
                          : Refuse(h, 431, StrCat("a header line is longer than ", lim.max_line_bytes, " bytes"));
    if (raw.size() < 2 || raw[raw.size() - 2] != '\r')
      return Refuse(h, 400, "a line of the request head ends without CR LF");
    const std::string_view line = raw.substr(0, raw.size() - 2);
    for (unsigned char c : line)
      if (c == '\r' || c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f)
        return Refuse(h, 400, "a control character in the request head");
    if (request_line) {
      h = ParseRequestLine(std::move(h), line);
      if (h.state == State::kRefused) return h;
      continue;
    }
    if (line.empty()) {  // the blank line: the head is complete
      h.head_bytes = pos;
      break;
    }
    if (++headers > lim.max_headers)
      return Refuse(h, 431, StrCat("more than ", lim.max_headers, " header lines"));
    if (line[0] == ' ' || line[0] == '\t')
      return Refuse(h, 400, "a folded header line (obsolete line folding is not accepted)");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return Refuse(h, 400, "malformed header line '" + Excerpt(line) + "' (expected Name: value)");
    const std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    for (unsigned char c : name)
      if (!IsTokenChar(c)) return Refuse(h, 400, "malformed header name '" + Excerpt(name) + "'");

    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos)
        return Refuse(h, 400, "Content-Length '" + Excerpt(value) + "' is not a number of bytes");
      // More than 19 digits cannot fit the limit (nor a uint64).
      uint64_t n = UINT64_MAX;
      if (value.size() <= 19) {
        n = 0;
        for (char c : value) n = n * 10 + uint64_t(c - '0');
      }
      if (have_length && n != h.content_length)
        return Refuse(h, 400, "two different Content-Length headers");
      have_length = true;
      h.content_length = n;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (have_te) return Refuse(h, 400, "more than one Transfer-Encoding header");
      if (!EqualsIgnoreCase(value, "chunked"))
        return Refuse(h, 501, "Transfer-Encoding '" + Excerpt(value) + "' is not supported (only chunked)");
      have_te = true;
      h.chunked = true;
    } else if (EqualsIgnoreCase(name, "Expect")) {
      if (!EqualsIgnoreCase(value, "100-continue"))
        return Refuse(h, 417, "Expect '" + Excerpt(value) + "' is not supported (only 100-continue)");
      h.expect_continue = true;
      h.expect_begin = line_begin;
      h.expect_end = pos;
    }
  }
  // Both framings at once is how requests are smuggled past a proxy.
  if (have_length && have_te) return Refuse(h, 400, "both Content-Length and Transfer-Encoding");
  if (!h.chunked && h.content_length > lim.max_body_bytes)
    return Refuse(h, 413, StrCat("the request body is larger than this server's limit of ", lim.max_body_bytes,
                                 " bytes (--max-body-bytes)"));
  h.state = State::kReady;
  return h;
}

}  // namespace rg::server
