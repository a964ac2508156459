#include "generate/redis_store.h"

#include <hiredis/hiredis.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace rg {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kFirstPause = 0.25, kMaxPause = 8.0;  // seconds between reconnection attempts
constexpr timeval kConnectTimeout{0, 300000};           // a store that does not answer is a miss,
constexpr timeval kCommandTimeout{2, 0};                // never a stalled request

void Log(const std::string& line) { std::fprintf(stderr, "[cache] %s\n", line.c_str()); }

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

RedisAddress ParseRedisUrl(const std::string& url) {
  const std::string scheme = "redis://";
  RG_CHECK(url.rfind(scheme, 0) == 0, "--state-store '", url, "': expected redis://HOST:PORT[/DB]");
  std::string rest = url.substr(scheme.size());
  RedisAddress a;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest.resize(slash);
    char* end = nullptr;
    const long v = db.empty() ? -1 : std::strtol(db.c_str(), &end, 10);
    RG_CHECK(!db.empty() && end && *end == '\0' && v >= 0 && v < 1 << 20, "--state-store '", url,
             "': the database after '/' must be a number, got '", db, "'");
    a.db = int(v);
  }
  size_t colon = rest.rfind(':');
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    RG_CHECK(close != std::string::npos, "--state-store '", url, "': unclosed '[' in the host");
    a.host = rest.substr(1, close - 1);
    colon = rest.find(':', close);
  } else {
    a.host = rest.substr(0, colon);
  }
  RG_CHECK(!a.host.empty(), "--state-store '", url, "': no host");
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    RG_CHECK(!port.empty() && end && *end == '\0' && p > 0 && p < 65536, "--state-store '", url,
             "': the port must be in [1, 65535], got '", port, "'");
    a.port = int(p);
  }
  return a;
}

// A connection with its own fault state: a failed command closes it, and
// reconnection waits a pause that doubles after every failed attempt.
struct RedisStore::Link {
  RedisAddress addr;
  std::string name;
  redisContext* c = nullptr;
  mutable std::mutex mu;  // the fields below (Status() reads them from other threads)
  bool down = false;
  std::string reason;
  std::chrono::system_clock::time_point down_since;
  Clock::time_point retry_at;
  double pause = kFirstPause;

  ~Link() {
    if (c) redisFree(c);
  }

  void MarkDown(const std::string& why) {
    if (c) redisFree(c);
    c = nullptr;
    std::lock_guard<std::mutex> lk(mu);
    if (!down) {
      down = true;
      down_since = std::chrono::system_clock::now();
      Log(name + ": unavailable (" + why + "); requests go on without it, retrying in the background");
    }
    reason = why;
    retry_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(pause));
    pause = std::min(kMaxPause, pause * 2);
  }

  void MarkUp() {
    std::lock_guard<std::mutex> lk(mu);
    if (down) Log(name + ": back");
    down = false;
    pause = kFirstPause;
  }

  bool Available() const {
    std::lock_guard<std::mutex> lk(mu);
    return !down || Clock::now() >= retry_at;
  }

  // Connected (and the database selected), or false.
  bool Ready() {
    if (c) return true;
    if (!Available()) return false;
    c = redisConnectWithTimeout(addr.host.c_str(), addr.port, kConnectTimeout);
    if (!c || c->err) {
      MarkDown(c ? c->errstr : "cannot allocate a connection");
      return false;
    }
    redisSetTimeout(c, kCommandTimeout);
    if (addr.db != 0) {
      Reply r(static_cast<redisReply*>(redisCommand(c, "SELECT %d", addr.db)));
      if (!r || r->type == REDIS_REPLY_ERROR) {
        MarkDown(r ? r->str : c->errstr);
        return false;
      }
    }
    MarkUp();
    return true;
  }

  // Sends every command (argv form, binary-safe) in one round trip; the
  // replies in order, or empty after any failure (the link goes down).
  std::vector<Reply> Pipeline(const std::vector<std::vector<std::string_view>>& cmds) {
    std::vector<Reply> out;
    if (!Ready()) return out;
    for (const auto& cmd : cmds) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (std::string_view a : cmd) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(c, int(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
        MarkDown(c->errstr);
        return {};
      }
    }
    for (size_t i = 0; i < cmds.size(); ++i) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK) {
        MarkDown(c->errstr[0] ? c->errstr : "connection lost");
        if (r) freeReplyObject(r);
        return {};
      }
      out.emplace_back(static_cast<redisReply*>(r));
    }
    return out;
  }
};

RedisStore::RedisStore(const std::string& url, int64_t ttl_seconds, const Config& c, const ModelFingerprint& fp)
    : addr_(ParseRedisUrl(url)),
      name_("redis://" + addr_.host + ":" + std::to_string(addr_.port) + "/" + std::to_string(addr_.db)),
      ttl_(ttl_seconds),
      max_value_bytes_(MaxStateFileBytes(c)),
      fp_(fp) {
  RG_CHECK(ttl_seconds >= 0, "--state-store-ttl must be >= 0, got ", ttl_seconds);
  for (auto* link : {&reader_, &writer_}) {
    *link = std::make_unique<Link>();
    (*link)->addr = addr_;
    (*link)->name = name_;
  }
  reader_->Ready();  // says at start whether Redis is there (a miss either way)
}

RedisStore::~RedisStore() = default;

std::string RedisStore::RootKey(std::span<const int32_t> tokens) const {
  const size_t n = std::min(tokens.size(), kRootTokens);
  const uint64_t head[3] = {0x72676c2d726f6f74ull /* "rgl-root" */, fp_.config, fp_.weights};
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, head, sizeof head);
  XXH3_64bits_update(st, tokens.data(), n * sizeof(int32_t));
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return std::string("rgl:") + buf;
}

std::vector<bool> RedisStore::Contains(const std::vector<std::string>& keys) {
  std::vector<std::vector<std::string_view>> cmds;
  for (const std::string& k : keys) cmds.push_back({"EXISTS", k});
  const std::vector<Reply> r = reader_->Pipeline(cmds);
  std::vector<bool> out(keys.size(), false);
  for (size_t i = 0; i < r.size() && i < keys.size(); ++i)
    out[i] = r[i] && r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer == 1;
  return out;
}

std::optional<std::string> RedisStore::Get(const std::string& key) {
  // The size first: a value larger than any state file of this model is not
  // read at all.
  std::vector<Reply> r = reader_->Pipeline({{"STRLEN", key}});
  if (r.empty() || !r[0] || r[0]->type != REDIS_REPLY_INTEGER || r[0]->integer <= 0) return std::nullopt;
  if (size_t(r[0]->integer) > max_value_bytes_) {
    Log(StrCat("skipped: ", name_, " ", key, ": ", r[0]->integer, " bytes, more than a state of this model can be (",
               max_value_bytes_, ")"));
    return std::nullopt;
  }
  r = reader_->Pipeline({{"GET", key}});
  if (r.empty() || !r[0] || r[0]->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(r[0]->str, r[0]->len);
}

void RedisStore::Put(const std::string& key, const std::string& value, std::span<const int32_t> tokens) {
  const std::string root = RootKey(tokens), len = std::to_string(tokens.size()), ttl = std::to_string(ttl_);
  std::vector<std::vector<std::string_view>> cmds;
  if (ttl_ > 0) cmds.push_back({"SET", key, value, "EX", ttl});
  else cmds.push_back({"SET", key, value});
  cmds.push_back({"ZADD", root, len, len});
  if (ttl_ > 0) cmds.push_back({"EXPIRE", root, ttl});
  const std::vector<Reply> r = writer_->Pipeline(cmds);
  for (const Reply& x : r)
    if (x && x->type == REDIS_REPLY_ERROR) Log(StrCat(name_, ": ", x->str));  // e.g. OOM without an eviction policy
}

std::vector<int64_t> RedisStore::KnownLengths(std::span<const int32_t> tokens) {
  // The largest recorded lengths up to this prompt's, at most 256 of them.
  const std::string root = RootKey(tokens), max = std::to_string(tokens.size());
  const std::vector<Reply> r = reader_->Pipeline({{"ZREVRANGEBYSCORE", root, max, "1", "LIMIT", "0", "256"}});
  std::vector<int64_t> out;
  if (r.empty() || !r[0] || r[0]->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < r[0]->elements; ++i) {
    const redisReply* e = r[0]->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    char* end = nullptr;
    const long long v = std::strtoll(e->str, &end, 10);
    if (end && *end == '\0' && v > 0) out.push_back(v);
  }
  return out;
}

bool RedisStore::Up() const { return reader_->Available(); }

std::string RedisStore::Status() const {
  for (const Link* l : {reader_.get(), writer_.get()}) {
    std::lock_guard<std::mutex> lk(l->mu);
    if (!l->down) continue;
    const std::time_t t = std::chrono::system_clock::to_time_t(l->down_since);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::gmtime(&t));
    return StrCat("down since ", when, " UTC: ", l->reason);
  }
  return "ok";
}

}  // namespace rg
