#include "model/state_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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
constexpr size_t kSectionCountsBytes = 24;    // v2: n_tokens, n_logits, n_app
constexpr size_t kV1ExtrasFixedBytes = 16;    // v1: chat flags, n_recent, turns
constexpr uint32_t kV1MaxRecentTokens = 1u << 20;
constexpr size_t kLayerHeaderBytes = 16;
constexpr size_t kTrailerBytes = 8;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr uint32_t kKindRecurrent = 0;
constexpr uint32_t kKindAttention = 1;

bool HostIsLittleEndian() {
  const uint16_t x = 1;
  uint8_t b;
  std::memcpy(&b, &x, 1);
  return b == 1;
}

// The hash of a version's header and trailer.
uint64_t FileHash(uint32_t version, const void* data, size_t n) {
  return version == 1 ? HashBytes(data, n) : uint64_t(XXH3_64bits(data, n));
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = char((v >> (8 * i)) & 0xff);
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = char((v >> (8 * i)) & 0xff);
}
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

// Little-endian writer into a buffer sized in advance.
class Writer {
 public:
  explicit Writer(char* p) : p_(p) {}
  void U32(uint32_t v) {
    PutU32(p_, v);
    p_ += 4;
  }
  void U64(uint64_t v) {
    PutU64(p_, v);
    p_ += 8;
  }
  void Bytes(const void* src, size_t n) {
    if (n) std::memcpy(p_, src, n);
    p_ += n;
  }
  template <class T>  // 4-byte values (float, int32)
  void Words(const T* src, size_t n) {
    static_assert(sizeof(T) == 4);
    if (HostIsLittleEndian()) return Bytes(src, n * 4);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, src + i, 4);
      U32(u);
    }
  }
  char* at() const { return p_; }

 private:
  char* p_;
};

// Bounds-checked little-endian reader over [pos, end) of the file bytes.
class Reader {
 public:
  Reader(std::string_view b, size_t pos, size_t end, const std::string& name)
      : b_(b), pos_(pos), end_(end), name_(name) {}
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
  template <class T>
  void Words(T* dst, size_t n, const char* what) {
    static_assert(sizeof(T) == 4);
    RG_CHECK(n <= (end_ - pos_) / 4, name_, ": corrupt state file: ", what, " at byte ", pos_, " needs ", n,
             " values but only ", end_ - pos_, " bytes remain before the checksum");
    if (HostIsLittleEndian()) {
      if (n) std::memcpy(dst, b_.data() + pos_, n * 4);
    } else {
      for (size_t i = 0; i < n; ++i) {
        const uint32_t u = GetU32(b_.data() + pos_ + 4 * i);
        std::memcpy(dst + i, &u, 4);
      }
    }
    pos_ += n * 4;
  }
  std::string_view View(size_t n, const char* what) {
    Need(n, what);
    const std::string_view v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  size_t pos() const { return pos_; }
  // The bytes read since `from`.
  std::string_view Span(size_t from) const { return b_.substr(from, pos_ - from); }

 private:
  std::string_view b_;
  size_t pos_, end_;
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

size_t Pad4(size_t n) { return (4 - n % 4) % 4; }

size_t MaxFileBytes(const Config& c) { return MaxStateFileBytes(c); }

}  // namespace

// The sizes a state file of this model can have, over every version.
size_t MaxStateFileBytes(const Config& c) {
  size_t n = kHeaderBytes + kSectionCountsBytes + size_t(kMaxStateTokens) * 4 + size_t(c.vocab_size) * 4 +
             size_t(kMaxAppBytes) + 3 + kTrailerBytes;
  n = std::max(n, kHeaderBytes + kV1ExtrasFixedBytes + size_t(kV1MaxRecentTokens) * 4 + kTrailerBytes);
  return n + LayerSectionBytes(c, c.attention_window);
}

namespace {

size_t MinFileBytes(const Config& c) {
  return kHeaderBytes + std::min(kSectionCountsBytes, kV1ExtrasFixedBytes) + kTrailerBytes + LayerSectionBytes(c, 0);
}

struct Header {
  uint32_t version = 0;
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
           version, "; this build reads versions 1 to ", kStateFormatVersion, ")");
  RG_CHECK(n >= kHeaderBytes, name, ": truncated state file: ends at byte ", n, " inside the ", kHeaderBytes,
           "-byte header");
  const char* h = head.data();
  RG_CHECK(GetU64(h + kHeaderHashedBytes) == FileHash(version, h, kHeaderHashedBytes), name,
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
  hd.version = version;
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

// Version 1's chat extras, kept verbatim as the application data: checks
// their framing and returns their bytes.
std::string_view ReadV1Extras(Reader& r, const std::string& name) {
  const size_t at = r.pos();
  r.U32("chat flags");
  const uint32_t n_recent = r.U32("recent token count");
  RG_CHECK(n_recent <= kV1MaxRecentTokens, name, ": corrupt state file: ", n_recent, " recent tokens (at most ",
           kV1MaxRecentTokens, ")");
  r.U64("turn count");
  r.View(size_t(n_recent) * 4, "recent tokens");
  return r.Span(at);
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

uint64_t HashConfig(const Config& c, bool tied_lm_head) {
  std::string buf(16 + 8 * 8 + 4 * 8 + 8 + 4 * c.layers.size(), '\0');
  Writer w(buf.data());
  auto f32 = [&](float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    w.U32(u);
  };
  w.Bytes("rgemma-config-v1", 16);
  w.U64(uint64_t(c.vocab_size));
  w.U64(uint64_t(c.width));
  w.U64(uint64_t(c.mlp_width));
  w.U64(uint64_t(c.num_heads));
  w.U64(uint64_t(c.head_dim));
  w.U64(uint64_t(c.lru_width));
  w.U64(uint64_t(c.conv_width));
  w.U64(uint64_t(c.attention_window));
  f32(c.logits_soft_cap);
  f32(c.rope_theta);
  f32(c.partial_rotary_factor);
  f32(c.rms_norm_eps);
  w.U32(tied_lm_head ? 1 : 0);
  w.U32(uint32_t(c.bos_id));
  w.U32(uint32_t(c.eos_id));
  w.U32(uint32_t(c.pad_id));
  w.U64(c.layers.size());
  for (LayerKind k : c.layers) w.U32(k == LayerKind::kRecurrent ? kKindRecurrent : kKindAttention);
  return HashBytes(buf.data(), size_t(w.at() - buf.data()));
}

ModelFingerprint FingerprintOf(const Weights& w) {
  ModelFingerprint fp;
  fp.config = HashConfig(w.config, w.tied_lm_head);
  // The small f32 tensors of the table (biases, norm scales, conv taps, Λ):
  // loaded as f32 whatever the checkpoint / matrix format, so the
  // fingerprint does not change when the model is quantized. Hashed globals
  // first, then layer by layer, each layer's norm scales first, otherwise in
  // table order (the order of version 1 fingerprints, kept so that saved
  // states stay valid).
  struct Part {
    int layer;
    bool norm;
    const float* data;
    int64_t n;
  };
  std::vector<Part> parts;
  ForEachLoadedTensor(w, [&](const TensorSpec& spec, TensorValue v) {
    const bool norm = spec.role == TensorRole::kNormScale;
    if (norm || spec.role == TensorRole::kVector || spec.role == TensorRole::kConv)
      parts.push_back({spec.layer, norm, v.vec, spec.numel()});
  });
  std::stable_sort(parts.begin(), parts.end(),
                   [](const Part& a, const Part& b) { return a.layer != b.layer ? a.layer < b.layer : a.norm > b.norm; });
  uint64_t h = HashBytes("rgemma-weights-v1", 17);
  for (const Part& p : parts) {
    if (p.data) h = HashBytes(p.data, size_t(p.n) * 4, h);
    else h = (h ^ 0x9e3779b97f4a7c15ull) * kFnvPrime;
  }
  fp.weights = h;
  return fp;
}

size_t LayerSectionBytes(const Config& c, int64_t pos) {
  size_t n = 0;
  for (LayerKind k : c.layers) n += LayerBytes(c, k, pos);
  return n;
}

void EncodeLayers(const State& state, const Config& c, char* out) {
  RG_CHECK(int64_t(state.layers.size()) == c.num_layers(), "SaveState: the state has ", state.layers.size(),
           " layers, the model ", c.num_layers());
  const size_t K1 = size_t(c.conv_width - 1), L = size_t(c.lru_width), hd = size_t(c.head_dim);
  Writer w(out);
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
      w.Words(r->conv.data(), K1 * L);
      w.Words(r->h.data(), L);
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
      w.Words(a->k.data(), n * hd);
      w.Words(a->v.data(), n * hd);
    }
  }
  RG_CHECK(size_t(w.at() - out) == LayerSectionBytes(c, state.pos), "SaveState: internal size mismatch");
}

namespace {

// Walks a layer section of a state at `pos`, checking each layer's header;
// calls body(i, reader, floats_a, floats_b) with the counts of its two
// float arrays (recurrent: conv, h; attention: k, v), which body must read.
template <class Body>
void WalkLayers(std::string_view section, const std::string& name, const Config& c, int64_t pos, Body&& body) {
  Reader r(section, 0, section.size(), name);
  const size_t K1 = size_t(c.conv_width - 1), L = size_t(c.lru_width), hdim = size_t(c.head_dim);
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const size_t at = r.pos();
    const uint32_t kind = r.U32("layer kind"), a = r.U32("layer size"), b = r.U32("layer size"),
                   zero = r.U32("layer reserved");
    if (c.layers[i] == LayerKind::kRecurrent) {
      RG_CHECK(kind == kKindRecurrent && a == L && b == K1 && zero == 0, name, ": corrupt state file: layer ", i,
               " (at byte ", at, " of the layer section) should be recurrent with lru_width ", L, " and ", K1,
               " conv taps; found kind ", kind, ", ", a, ", ", b);
      body(i, r, K1 * L, L);
    } else {
      const size_t n = size_t(std::min<int64_t>(pos, c.attention_window));
      RG_CHECK(kind == kKindAttention && a == n && b == hdim && zero == 0, name, ": corrupt state file: layer ",
               i, " (at byte ", at, " of the layer section) should be attention with ", n,
               " used slots of head_dim ", hdim, "; found kind ", kind, ", ", a, ", ", b);
      body(i, r, n * hdim, n * hdim);
    }
  }
  RG_CHECK(r.pos() == section.size(), name, ": corrupt state file: ", section.size() - r.pos(),
           " unparsed bytes before the checksum");
}

}  // namespace

void DecodeLayers(std::string_view section, const std::string& name, const Config& c, int64_t pos, State* state) {
  RG_CHECK(state && int64_t(state->layers.size()) == c.num_layers(), "LoadState: the target state has ",
           state ? state->layers.size() : 0, " layers, the model ", c.num_layers());
  WalkLayers(section, name, c, pos, [&](size_t i, Reader& r, size_t na, size_t nb) {
    if (auto* rs = std::get_if<RecurrentState>(&state->layers[i])) {
      r.Words(rs->conv.data(), na, "conv state");
      r.Words(rs->h.data(), nb, "RG-LRU state");
    } else {
      auto& as = std::get<AttentionState>(state->layers[i]);
      r.Words(as.k.data(), na, "keys");
      r.Words(as.v.data(), nb, "values");
    }
  });
  state->pos = pos;
}

std::string SerializeStateParts(const Config& c, const ModelFingerprint& fp, int64_t pos,
                                const StateFileExtras& extras, std::string_view layers) {
  RG_CHECK(pos >= 0, "SaveState: negative position");
  RG_CHECK(extras.tokens.empty() || int64_t(extras.tokens.size()) == pos, "SaveState: ", extras.tokens.size(),
           " tokens for a state at position ", pos);
  RG_CHECK(extras.tokens.size() <= kMaxStateTokens, "SaveState: ", extras.tokens.size(), " tokens, at most ",
           kMaxStateTokens, " can be stored");
  RG_CHECK(extras.logits.empty() || int64_t(extras.logits.size()) == c.vocab_size, "SaveState: ",
           extras.logits.size(), " logits, the vocabulary has ", c.vocab_size);
  RG_CHECK(extras.app.size() <= kMaxAppBytes, "SaveState: ", extras.app.size(),
           " bytes of application data, at most ", kMaxAppBytes);
  RG_CHECK(layers.size() == LayerSectionBytes(c, pos), "SaveState: layer section of ", layers.size(),
           " bytes, a state at position ", pos, " has ", LayerSectionBytes(c, pos));
  const size_t pad = Pad4(extras.app.size());
  const size_t total = kHeaderBytes + kSectionCountsBytes + extras.tokens.size() * 4 + extras.logits.size() * 4 +
                       extras.app.size() + pad + layers.size() + kTrailerBytes;
  std::string out(total, '\0');
  Writer w(out.data());
  w.Bytes(kMagic, sizeof kMagic);
  w.U32(kStateFormatVersion);
  w.U32(0);
  w.U64(total);
  w.U64(fp.config);
  w.U64(fp.weights);
  w.U64(uint64_t(pos));
  w.U32(uint32_t(c.num_layers()));
  w.U32(0);
  w.U64(FileHash(kStateFormatVersion, out.data(), kHeaderHashedBytes));
  w.U64(extras.tokens.size());
  w.U64(extras.logits.size());
  w.U64(extras.app.size());
  w.Words(extras.tokens.data(), extras.tokens.size());
  w.Words(extras.logits.data(), extras.logits.size());
  w.Bytes(extras.app.data(), extras.app.size());
  w.Bytes("\0\0\0", pad);
  w.Bytes(layers.data(), layers.size());
  w.U64(FileHash(kStateFormatVersion, out.data(), total - kTrailerBytes));
  RG_CHECK(size_t(w.at() - out.data()) == total, "SaveState: internal size mismatch");
  return out;
}

std::string SerializeState(const State& state, const Config& c, const ModelFingerprint& fp,
                           const StateFileExtras& extras) {
  std::string layers(LayerSectionBytes(c, state.pos), '\0');
  EncodeLayers(state, c, layers.data());
  return SerializeStateParts(c, fp, state.pos, extras, layers);
}

ParsedStateFile ParseStateFile(std::string_view bytes, const std::string& name, const Config& c,
                               const ModelFingerprint& fp) {
  const Header hd = CheckHeader(bytes.substr(0, std::min(bytes.size(), kHeaderBytes)), bytes.size(), name, c, fp);
  const size_t end = bytes.size() - kTrailerBytes;  // CheckHeader: size >= MinFileBytes > trailer
  RG_CHECK(GetU64(bytes.data() + end) == FileHash(hd.version, bytes.data(), end), name,
           ": corrupt state file: checksum mismatch");
  ParsedStateFile out;
  out.version = hd.version;
  out.pos = hd.pos;
  Reader r(bytes, kHeaderBytes, end, name);
  if (hd.version == 1) {
    out.extras.app = std::string(ReadV1Extras(r, name));
  } else {
    const uint64_t n_tokens = r.U64("token count"), n_logits = r.U64("logit count"), n_app = r.U64("app data size");
    RG_CHECK(n_tokens == 0 || n_tokens == uint64_t(hd.pos), name, ": corrupt state file: ", n_tokens,
             " tokens for a state at position ", hd.pos);
    RG_CHECK(n_logits == 0 || n_logits == uint64_t(c.vocab_size), name, ": corrupt state file: ", n_logits,
             " logits, the vocabulary has ", c.vocab_size);
    RG_CHECK(n_app <= kMaxAppBytes, name, ": corrupt state file: ", n_app, " bytes of application data (at most ",
             kMaxAppBytes, ")");
    r.Need(size_t(n_tokens) * 4, "tokens");
    out.extras.tokens.resize(size_t(n_tokens));
    r.Words(out.extras.tokens.data(), size_t(n_tokens), "tokens");
    for (size_t i = 0; i < out.extras.tokens.size(); ++i)
      RG_CHECK(out.extras.tokens[i] >= 0 && out.extras.tokens[i] < c.vocab_size, name,
               ": corrupt state file: token ", i, " is ", out.extras.tokens[i], ", outside the vocabulary [0, ",
               c.vocab_size, ")");
    out.extras.logits.resize(size_t(n_logits));
    r.Words(out.extras.logits.data(), size_t(n_logits), "logits");
    out.extras.app = std::string(r.View(size_t(n_app), "app data"));
    const std::string_view pad = r.View(Pad4(size_t(n_app)), "padding");
    RG_CHECK(pad.find_first_not_of('\0') == std::string_view::npos, name, ": corrupt state file: non-zero padding");
  }
  const size_t want = LayerSectionBytes(c, hd.pos);
  RG_CHECK(end - r.pos() == want, name, ": corrupt state file: the layer section at byte ", r.pos(), " has ",
           end - r.pos(), " bytes, a state at position ", hd.pos, " of this model has ", want);
  out.layers = bytes.substr(r.pos(), want);
  WalkLayers(out.layers, name, c, hd.pos, [](size_t, Reader& lr, size_t na, size_t nb) {
    lr.View(na * 4, "layer data");
    lr.View(nb * 4, "layer data");
  });
  return out;
}

StateFileExtras ParseState(std::string_view bytes, const std::string& name, const Config& c,
                           const ModelFingerprint& fp, State* state) {
  ParsedStateFile f = ParseStateFile(bytes, name, c, fp);
  State tmp(c);
  DecodeLayers(f.layers, name, c, f.pos, &tmp);
  RG_CHECK(state && state->layers.size() == tmp.layers.size(), "LoadState: the target state has ",
           state ? state->layers.size() : 0, " layers, the model ", tmp.layers.size());
  *state = std::move(tmp);
  return std::move(f.extras);
}

void SaveState(const std::string& path, const State& state, const Config& c, const ModelFingerprint& fp,
               const StateFileExtras& extras) {
  WriteFileAtomic(path, SerializeState(state, c, fp, extras));
}

std::string ReadStateFileBytes(const std::string& path, const Config& c, const ModelFingerprint& fp) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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
  return bytes;
}

StateFileExtras LoadState(const std::string& path, const Config& c, const ModelFingerprint& fp, State* state) {
  return ParseState(ReadStateFileBytes(path, c, fp), path, c, fp, state);
}

}  // namespace rg
