#include "server/cors.h"

#include <algorithm>
#include <cctype>
#include <httplib.h>

#include "core/error.h"
#include "server/openai_json.h"

namespace rg::server {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower((unsigned char)c));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace((unsigned char)s.front())) s.remove_prefix(1);
  while (!s.empty() && std::isspace((unsigned char)s.back())) s.remove_suffix(1);
  return s;
}

// An origin as browsers send it: scheme "://" host [":" port], nothing after.
bool LooksLikeOrigin(std::string_view o) {
  const size_t sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  for (char c : o.substr(0, sep))
    if (!std::isalnum((unsigned char)c) && c != '+' && c != '-' && c != '.') return false;
  const std::string_view host = o.substr(sep + 3);
  if (host.empty()) return false;
  return std::none_of(host.begin(), host.end(), [](char c) {
    return c == '/' || c == '?' || c == '#' || c == '@' || std::isspace((unsigned char)c);
  });
}

}  // namespace

CorsPolicy::CorsPolicy(std::string_view list) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    if (item == "*") {
      any_ = true;
      continue;
    }
    if (item.size() > 1 && item.back() == '/') item.remove_suffix(1);
    RG_CHECK(LooksLikeOrigin(item), "--cors-origin: '", item,
             "' is not an origin (expected scheme://host[:port], e.g. http://localhost:3000, or *)");
    origins_.push_back(Lower(item));
  }
}

bool CorsPolicy::Allows(std::string_view origin) const {
  if (origin.empty()) return false;
  if (any_) return true;
  const std::string o = Lower(origin);
  return std::find(origins_.begin(), origins_.end(), o) != origins_.end();
}

std::string CorsPolicy::Describe() const {
  if (any_) return "*";
  if (origins_.empty()) return "none";
  std::string s;
  for (const std::string& o : origins_) s += (s.empty() ? "" : ",") + o;
  return s;
}

void CorsPolicy::AddHeaders(const httplib::Request& req, httplib::Response& res) const {
  if (!enabled()) return;
  res.set_header("Vary", "Origin");  // the answer depends on the Origin header
  const std::string origin = req.get_header_value("Origin");
  if (!Allows(origin) || res.has_header("Access-Control-Allow-Origin")) return;
  // The origin itself rather than "*": also valid for requests with credentials.
  res.set_header("Access-Control-Allow-Origin", origin);
  res.set_header("Access-Control-Expose-Headers", "Retry-After");
}

void CorsPolicy::Preflight(const httplib::Request& req, httplib::Response& res) const {
  const std::string origin = req.get_header_value("Origin");
  const bool preflight = !origin.empty() && req.has_header("Access-Control-Request-Method");
  if (preflight && !Allows(origin)) {
    res.status = 403;
    res.set_content(Dump(ErrorJson(ApiError(403, "cross-origin requests from " + origin +
                                                     " are not allowed (start the server with --cors-origin)"))),
                    "application/json");
    return;
  }
  res.status = 204;
  res.set_header("Allow", "GET, POST, OPTIONS");
  if (!preflight) return;
  res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  const std::string asked = req.get_header_value("Access-Control-Request-Headers");
  res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type" : asked);
  res.set_header("Access-Control-Max-Age", "600");
}

}  // namespace rg::server
