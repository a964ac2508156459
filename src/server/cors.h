// Cross-origin requests from web pages (CORS). By default a page served from
// elsewhere cannot drive this server: no response carries
// Access-Control-Allow-Origin, so the browser withholds it, and preflights
// are refused. `--cors-origin LIST` (comma-separated origins such as
// http://localhost:3000, or * for any) allows those origins: every response
// to a request from one of them names it (with Vary: Origin), and OPTIONS
// preflights are answered 204 with the methods and headers allowed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace rg::server {

class CorsPolicy {
 public:
  CorsPolicy() = default;
  // Throws rg::Error naming --cors-origin for an entry that is not * or
  // scheme://host[:port] (a trailing / is dropped).
  explicit CorsPolicy(std::string_view list);

  bool Allows(std::string_view origin) const;  // false for an empty origin
  bool enabled() const { return any_ || !origins_.empty(); }
  std::string Describe() const;  // for the start banner: "none", "*", or the list

  // Adds the CORS response headers if the request's Origin is allowed.
  void AddHeaders(const httplib::Request& req, httplib::Response& res) const;
  // Answers an OPTIONS request: 204 (with the preflight headers when the
  // origin is allowed), or 403 for a preflight from an origin that is not.
  void Preflight(const httplib::Request& req, httplib::Response& res) const;

 private:
  bool any_ = false;
  std::vector<std::string> origins_;  // lower case
};

}  // namespace rg::server
