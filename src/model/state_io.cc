#include "model/state_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <variant>

#include "core/error.h"
#include "core/file_io.h"

namespace rg {

namespace {

static_assert(sizeof(float) == 4);

constexpr char kMagic[8] = {'R', 'G', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr size_t kHeaderBytes = 64;
constexpr size_t kHeaderHashedBytes = 56;
constexpr size_t kExtrasFixedBytes = 16;
constexpr size_t kLayerHeaderBytes = 16;
constexpr size_t kTrailerBytes = 8;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr uint32_t kExtrasStarted = 1u << 0;
constexpr uint32_t kExtrasEndOfTurn = 1u << 1;
constexpr uint32_t kKindRecurrent = 0;
constexpr uint32_t kKindAttention = 1;

bool HostIsLittleEndian() {
  const uint16_t x = 1;
  uint8_t b;
  std::memcpy(&b, &x, 1);
  return b == 1;
}

// Little-endian byte writer.
class Writer {
 public:
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
  }
  void I64(int64_t v) { U64(uint64_t(v)); }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void Floats(const float* p, size_t n) {
    if (HostIsLittleEndian()) {
      Bytes(p, n * 4);
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, p + i, 4);
      U32(u);
    }
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(p[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

// Bounds-checked little-endian reader over the file bytes.
class Reader {
 public:
  Reader(std::string_view b, size_t end, const std::string& name) : b_(b), end_(end), name_(name) {}
  void Need(size_t n, const char* what) {
    if (n > end_ - pos_)
      Fail(name_, ": corrupt state file: ", what, " at byte ", pos_, " needs ", n, " bytes but only ",
           end_ - pos_, " remain before the checksum");
  }
  uint32_t U32(const char* what) {
    Need(4, what);
    const uint32_t v = GetU32(b_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t U64(const char* what) {
    Need(8, what);
    const uint64_t v = GetU64(b_.data() + pos_);
    pos_ += 8;
    return v;
  }
  void Floats(float* dst, size_t n, const char* what) {
    RG_CHECK(n <= (end_ - pos_) / 4, name_, ": corrupt state file: ", what, " at byte ", pos_, " needs ",
             n, " floats but only ", end_ - pos_, " bytes remain before the checksum");
    if (HostIsLittleEndian()) {
      std::memcpy(dst, b_.data() + pos_, n * 4);
    } else {
      for (size_t i = 0; i < n; ++i) {
        const uint32_t u = GetU32(b_.data() + pos_ + 4 * i);
        std::memcpy(dst + i, &u, 4);
      }
    }
    pos_ += n * 4;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view b_;
  size_t end_;
  size_t pos_ = kHeaderBytes;
  const std::string& name_;
};

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

size_t LayerBytes(const Config& c, LayerKind kind, int64_t pos) {
  if (kind == LayerKind::kRecurrent)
    return kLayerHeaderBytes + size_t(c.conv_width - 1) * size_t(c.lru_width) * 4 + size_t(c.lru_width) * 4;
  const size_t n = size_t(std::min<int64_t>(pos, c.attention_window));
  return kLayerHeaderBytes + 2 * n * size_t(c.head_dim) * 4;
}

// The largest file a state of this model can be (full KV windows, the most
// recent tokens allowed).
size_t MaxFileBytes(const Config& c) {
  size_t n = kHeaderBytes + kExtrasFixedBytes + size_t(kMaxRecentTokens) * 4 + kTrailerBytes;
  for (LayerKind k : c.layers) n += LayerBytes(c, k, c.attention_window);
  return n;
}
size_t MinFileBytes(const Config& c) {
  size_t n = kHeaderBytes + kExtrasFixedBytes + kTrailerBytes;
  for (LayerKind k : c.layers) n += LayerBytes(c, k, 0);
  return n;
}

struct Header {
  uint64_t file_bytes = 0;
  int64_t pos = 0;
};

// Validates the header given the first min(total, 64) bytes of a file of
// `total` bytes.
Header CheckHeader(std::string_view head, size_t total, const std::string& name, const Config& c,
                   const ModelFingerprint& fp) {
  const size_t n = head.size();
  if (n < sizeof kMagic) {
    if (std::memcmp(head.data(), kMagic, n) == 0)
      Fail(name, ": truncated state file: ends at byte ", n, " inside the ", kHeaderBytes, "-byte header");
    Fail(name, ": not an rgemma state file (no RGSTATE magic)");
  }
  RG_CHECK(std::memcmp(head.data(), kMagic, sizeof kMagic) == 0, name,
           ": not an rgemma state file (no RGSTATE magic)");
  RG_CHECK(n >= 12, name, ": truncated state file: ends at byte ", n, " inside the ", kHeaderBytes,
           "-byte header");
  const uint32_t version = GetU32(head.data() + 8);
  RG_CHECK(version != 0, name, ": invalid state file format version 0 (corrupt file?)");
  RG_CHECK(version <= kStateFormatVersion, name, ": state file was written by a newer rgemma (format version ",
           version, "; this build reads version ", kStateFormatVersion, ")");
  RG_CHECK(n >= kHeaderBytes, name, ": truncated state file: ends at byte ", n, " inside the ", kHeaderBytes,
           "-byte header");
  const char* h = head.data();
  RG_CHECK(GetU64(h + kHeaderHashedBytes) == HashBytes(h, kHeaderHashedBytes), name,
           ": corrupt state file: header checksum mismatch");
  RG_CHECK(GetU32(h + 12) == 0 && GetU32(h + 52) == 0, name,
           ": state file uses header flags this build does not know (written by a newer rgemma?)");
  const uint64_t config_hash = GetU64(h + 24), weights_hash = GetU64(h + 32);
  RG_CHECK(config_hash == fp.config, name, ": state was saved from a different model (config hash ",
           Hex(config_hash), ", this model's ", Hex(fp.config), ": other shapes or settings)");
  RG_CHECK(weights_hash == fp.weights, name, ": state was saved from a different model (same config, "
           "different weights: weights hash ", Hex(weights_hash), ", this model's ", Hex(fp.weights), ")");
  const uint32_t layers = GetU32(h + 48);
  RG_CHECK(int64_t(layers) == c.num_layers(), name, ": corrupt state file: ", layers,
           " layers, the model has ", c.num_layers());
  Header hd;
  hd.file_bytes = GetU64(h + 16);
  hd.pos = int64_t(GetU64(h + 40));
  RG_CHECK(hd.pos >= 0, name, ": corrupt state file: negative position ", hd.pos);
  const size_t lo = MinFileBytes(c), hi = MaxFileBytes(c);
  RG_CHECK(hd.file_bytes >= lo && hd.file_bytes <= hi, name, ": corrupt state file: declares ", hd.file_bytes,
           " bytes, outside [", lo, ", ", hi, "] for this model");
  RG_CHECK(total >= hd.file_bytes, name, ": truncated state file: ends at byte ", total, " of ", hd.file_bytes);
  RG_CHECK(total == hd.file_bytes, name, ": corrupt state file: ", total - hd.file_bytes,
           " unexpected bytes after its end (byte ", hd.file_bytes, ")");
  return hd;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

uint64_t HashBytes(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = 0;
    for (int k = 0; k < 8; ++k) w |= uint64_t(p[i + k]) << (8 * k);
    h = (h ^ w) * kFnvPrime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

uint64_t HashConfig(const Config& c) {
  Writer w;
  auto f32 = [&](float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    w.U32(u);
  };
  w.Bytes("rgemma-config-v1", 16);
  w.I64(c.vocab_size);
  w.I64(c.width);
  w.I64(c.mlp_width);
  w.I64(c.num_heads);
  w.I64(c.head_dim);
  w.I64(c.lru_width);
  w.I64(c.conv_width);
  w.I64(c.attention_window);
  f32(c.logits_soft_cap);
  f32(c.rope_theta);
  f32(c.partial_rotary_factor);
  f32(c.rms_norm_eps);
  w.U32(c.tied_lm_head ? 1 : 0);
  w.U32(uint32_t(c.bos_id));
  w.U32(uint32_t(c.eos_id));
  w.U32(uint32_t(c.pad_id));
  w.U64(c.layers.size());
  for (LayerKind k : c.layers) w.U32(k == LayerKind::kRecurrent ? kKindRecurrent : kKindAttention);
  return HashBytes(w.str().data(), w.str().size());
}

ModelFingerprint FingerprintOf(const Weights& w) {
  const Config& c = w.config;
  ModelFingerprint fp;
  fp.config = HashConfig(c);
  // The small f32 vectors: loaded as f32 whatever the checkpoint / matrix
  // format, so the fingerprint does not change when the model is quantized.
  uint64_t h = HashBytes("rgemma-weights-v1", 17);
  auto vec = [&](const float* p, int64_t n) {
    if (p) h = HashBytes(p, size_t(n) * 4, h);
    else h = (h ^ 0x9e3779b97f4a7c15ull) * kFnvPrime;
  };
  const int64_t D = c.width, L = c.lru_width, M = c.mlp_width;
  vec(w.final_norm, D);
  for (const LayerWeights& l : w.layers) {
    vec(l.temporal_norm, D);
    vec(l.channel_norm, D);
    if (const auto* r = std::get_if<RecurrentWeights>(&l.temporal)) {
      vec(r->linear_y_bias, L);
      vec(r->linear_x_bias, L);
      vec(r->linear_out_bias, D);
      vec(r->conv_w, c.conv_width * L);
      vec(r->conv_b, L);
      vec(r->recurrent_param, L);
      vec(r->input_gate_b, L);
      vec(r->a_gate_b, L);
    } else if (const auto* a = std::get_if<AttentionWeights>(&l.temporal)) {
      vec(a->o_bias, D);
    }
    vec(l.mlp.gate_bias, M);
    vec(l.mlp.up_bias, M);
    vec(l.mlp.down_bias, D);
  }
  fp.weights = h;
  return fp;
}

std::string SerializeState(const State& state, const Config& c, const ModelFingerprint& fp,
                           const ChatExtras& extras) {
  RG_CHECK(int64_t(state.layers.size()) == c.num_layers(), "SaveState: the state has ", state.layers.size(),
           " layers, the model ", c.num_layers());
  RG_CHECK(state.pos >= 0, "SaveState: negative position");
  RG_CHECK(extras.turns >= 0, "SaveState: negative turn count");
  const size_t n_recent = std::min<size_t>(extras.recent_tokens.size(), kMaxRecentTokens);
  size_t total = kHeaderBytes + kExtrasFixedBytes + n_recent * 4 + kTrailerBytes;
  for (LayerKind k : c.layers) total += LayerBytes(c, k, state.pos);

  Writer w;
  w.str().reserve(total);
  w.Bytes(kMagic, sizeof kMagic);
  w.U32(kStateFormatVersion);
  w.U32(0);
  w.U64(total);
  w.U64(fp.config);
  w.U64(fp.weights);
  w.I64(state.pos);
  w.U32(uint32_t(c.num_layers()));
  w.U32(0);
  w.U64(HashBytes(w.str().data(), kHeaderHashedBytes));

  w.U32((extras.started ? kExtrasStarted : 0) | (extras.context_has_end_of_turn ? kExtrasEndOfTurn : 0));
  w.U32(uint32_t(n_recent));
  w.I64(extras.turns);
  for (size_t i = extras.recent_tokens.size() - n_recent; i < extras.recent_tokens.size(); ++i)
    w.U32(uint32_t(extras.recent_tokens[i]));

  const size_t K1 = size_t(c.conv_width - 1), L = size_t(c.lru_width), hd = size_t(c.head_dim);
  for (size_t i = 0; i < state.layers.size(); ++i) {
    const auto& layer = state.layers[i];
    if (c.layers[i] == LayerKind::kRecurrent) {
      const auto* r = std::get_if<RecurrentState>(&layer);
      RG_CHECK(r && r->conv.size() == K1 * L && r->h.size() == L, "SaveState: layer ", i,
               " does not match the model's recurrent layer");
      w.U32(kKindRecurrent);
      w.U32(uint32_t(L));
      w.U32(uint32_t(K1));
      w.U32(0);
      w.Floats(r->conv.data(), K1 * L);
      w.Floats(r->h.data(), L);
    } else {
      const auto* a = std::get_if<AttentionState>(&layer);
      const size_t W = size_t(c.attention_window);
      RG_CHECK(a && a->k.size() == W * hd && a->v.size() == W * hd, "SaveState: layer ", i,
               " does not match the model's attention layer");
      const size_t n = size_t(std::min<int64_t>(state.pos, c.attention_window));
      w.U32(kKindAttention);
      w.U32(uint32_t(n));
      w.U32(uint32_t(hd));
      w.U32(0);
      w.Floats(a->k.data(), n * hd);
      w.Floats(a->v.data(), n * hd);
    }
  }
  w.U64(HashBytes(w.str().data(), w.str().size()));
  RG_CHECK(w.str().size() == total, "SaveState: internal size mismatch");
  return std::move(w.str());
}

ChatExtras ParseState(std::string_view bytes, const std::string& name, const Config& c,
                      const ModelFingerprint& fp, State* state) {
  const Header hd = CheckHeader(bytes.substr(0, std::min(bytes.size(), kHeaderBytes)), bytes.size(), name, c, fp);
  const size_t end = bytes.size() - kTrailerBytes;  // CheckHeader: size >= MinFileBytes > trailer
  RG_CHECK(GetU64(bytes.data() + end) == HashBytes(bytes.data(), end), name,
           ": corrupt state file: checksum mismatch");

  Reader r(bytes, end, name);
  ChatExtras ex;
  const uint32_t flags = r.U32("chat flags");
  RG_CHECK((flags & ~(kExtrasStarted | kExtrasEndOfTurn)) == 0, name, ": state file uses chat flags this build "
           "does not know (0x", Hex(flags), ")");
  ex.started = flags & kExtrasStarted;
  ex.context_has_end_of_turn = flags & kExtrasEndOfTurn;
  const uint32_t n_recent = r.U32("recent token count");
  RG_CHECK(n_recent <= kMaxRecentTokens, name, ": corrupt state file: ", n_recent, " recent tokens (at most ",
           kMaxRecentTokens, ")");
  ex.turns = int64_t(r.U64("turn count"));
  RG_CHECK(ex.turns >= 0, name, ": corrupt state file: negative turn count");
  r.Need(size_t(n_recent) * 4, "recent tokens");
  ex.recent_tokens.resize(n_recent);
  for (uint32_t i = 0; i < n_recent; ++i) {
    const uint32_t id = r.U32("recent token");
    RG_CHECK(int64_t(id) < c.vocab_size, name, ": corrupt state file: recent token ", i, " is ", id,
             ", outside the vocabulary [0, ", c.vocab_size, ")");
    ex.recent_tokens[i] = int32_t(id);
  }

  State tmp(c);
  tmp.pos = hd.pos;
  const size_t K1 = size_t(c.conv_width - 1), L = size_t(c.lru_width), hdim = size_t(c.head_dim);
  for (size_t i = 0; i < tmp.layers.size(); ++i) {
    const size_t at = r.pos();
    const uint32_t kind = r.U32("layer kind"), a = r.U32("layer size"), b = r.U32("layer size"),
                   zero = r.U32("layer reserved");
    if (c.layers[i] == LayerKind::kRecurrent) {
      RG_CHECK(kind == kKindRecurrent && a == L && b == K1 && zero == 0, name, ": corrupt state file: layer ", i,
               " (at byte ", at, ") should be recurrent with lru_width ", L, " and ", K1,
               " conv taps; found kind ", kind, ", ", a, ", ", b);
      auto& rs = std::get<RecurrentState>(tmp.layers[i]);
      r.Floats(rs.conv.data(), K1 * L, "conv state");
      r.Floats(rs.h.data(), L, "RG-LRU state");
    } else {
      const size_t n = size_t(std::min<int64_t>(hd.pos, c.attention_window));
      RG_CHECK(kind == kKindAttention && a == n && b == hdim && zero == 0, name, ": corrupt state file: layer ",
               i, " (at byte ", at, ") should be attention with ", n, " used slots of head_dim ", hdim,
               "; found kind ", kind, ", ", a, ", ", b);
      auto& as = std::get<AttentionState>(tmp.layers[i]);
      r.Floats(as.k.data(), n * hdim, "keys");
      r.Floats(as.v.data(), n * hdim, "values");
    }
  }
  RG_CHECK(r.pos() == end, name, ": corrupt state file: ", end - r.pos(), " unparsed bytes before the checksum");
  RG_CHECK(state && state->layers.size() == tmp.layers.size(), "LoadState: the target state has ",
           state ? state->layers.size() : 0, " layers, the model ", tmp.layers.size());
  *state = std::move(tmp);
  return ex;
}

void SaveState(const std::string& path, const State& state, const Config& c, const ModelFingerprint& fp,
               const ChatExtras& extras) {
  WriteFileAtomic(path, SerializeState(state, c, fp, extras));
}

void SaveState(const std::string& path, const State& state, const Weights& w, const ChatExtras& extras) {
  SaveState(path, state, w.config, FingerprintOf(w), extras);
}

ChatExtras LoadState(const std::string& path, const Config& c, const ModelFingerprint& fp, State* state) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  RG_CHECK(fd >= 0, path, ": cannot open state file: ", ErrnoText());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  RG_CHECK(::fstat(fd, &st) == 0, path, ": cannot read state file: ", ErrnoText());
  RG_CHECK(S_ISREG(st.st_mode), path, ": not a regular file");
  const size_t total = size_t(st.st_size);

  auto read_all = [&](char* dst, size_t n, size_t offset) {
    size_t done = 0;
    while (done < n) {
      const ssize_t k = ::pread(fd, dst + done, n - done, off_t(offset + done));
      if (k < 0 && errno == EINTR) continue;
      RG_CHECK(k >= 0, path, ": cannot read state file: ", ErrnoText());
      if (k == 0) Fail(path, ": truncated state file: ends at byte ", offset + done, " of ", total,
                       " (it shrank while being read)");
      done += size_t(k);
    }
  };
  // The header first: it bounds the size before anything big is allocated.
  std::string bytes(std::min(total, kHeaderBytes), '\0');
  read_all(bytes.data(), bytes.size(), 0);
  CheckHeader(bytes, total, path, c, fp);
  bytes.resize(total);
  read_all(bytes.data() + kHeaderBytes, total - kHeaderBytes, kHeaderBytes);
  return ParseState(bytes, path, c, fp, state);
}

ChatExtras LoadState(const std::string& path, const Weights& w, State* state) {
  return LoadState(path, w.config, FingerprintOf(w), state);
}

}  // namespace rg
