// State files (model/state_io.h): bitwise round trips and every corruption
// class (truncation at every length, every single bit flip, garbage, another
// model, a newer format) must give a one-line rg::Error, never a crash.
#include "model/state_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"

#include <xxhash.h>

namespace rg {
namespace {

namespace fs = std::filesystem;

Config SmallConfig(int64_t window = 4) {
  Config c;
  c.vocab_size = 64;
  c.width = 8;
  c.mlp_width = 24;
  c.num_heads = 2;
  c.head_dim = 4;
  c.lru_width = 8;
  c.conv_width = 4;
  c.attention_window = window;
  c.layers = {LayerKind::kRecurrent, LayerKind::kRecurrent, LayerKind::kAttention};
  return c;
}

constexpr ModelFingerprint kFp{0x1111222233334444ull, 0x5555666677778888ull};

// Random contents; KV slots never written at this pos stay zero, as in a real
// State (they are not stored).
State RandomState(const Config& c, int64_t pos, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  State s(c);
  s.pos = pos;
  for (auto& l : s.layers) {
    if (auto* r = std::get_if<RecurrentState>(&l)) {
      for (float& x : r->conv) x = u(rng);
      for (float& x : r->h) x = u(rng);
    } else if (auto* a = std::get_if<AttentionState>(&l)) {
      const size_t used = size_t(std::min<int64_t>(pos, c.attention_window) * c.head_dim);
      for (size_t i = 0; i < used; ++i) {
        a->k[i] = u(rng);
        a->v[i] = u(rng);
      }
    }
  }
  return s;
}

// Tokens (when the position is small enough to list them), logits and
// application data.
StateFileExtras SomeExtras(const Config& c, int64_t pos) {
  StateFileExtras e;
  if (pos <= 64)
    for (int64_t i = 0; i < pos; ++i) e.tokens.push_back(int32_t((i * 7 + 3) % c.vocab_size));
  for (int64_t i = 0; i < c.vocab_size; ++i) e.logits.push_back(float(i) * 0.25f - 3.f);
  e.app = "chat bytes";  // not a multiple of 4: padded
  return e;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

void ExpectSameState(const State& a, const State& b) {
  ASSERT_EQ(a.pos, b.pos);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    ASSERT_EQ(a.layers[i].index(), b.layers[i].index()) << "layer " << i;
    if (auto* r = std::get_if<RecurrentState>(&a.layers[i])) {
      const auto& q = std::get<RecurrentState>(b.layers[i]);
      EXPECT_TRUE(BitwiseEqual(r->conv, q.conv)) << "layer " << i;
      EXPECT_TRUE(BitwiseEqual(r->h, q.h)) << "layer " << i;
    } else {
      const auto& x = std::get<AttentionState>(a.layers[i]);
      const auto& y = std::get<AttentionState>(b.layers[i]);
      EXPECT_TRUE(BitwiseEqual(x.k, y.k)) << "layer " << i;
      EXPECT_TRUE(BitwiseEqual(x.v, y.v)) << "layer " << i;
    }
  }
}

// Runs ParseState and returns the error message ("" if it succeeded).
std::string ParseError(std::string_view bytes, const Config& c = SmallConfig(), ModelFingerprint fp = kFp) {
  State s(c);
  try {
    ParseState(bytes, "F.state", c, fp, &s);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Fixes the header hash (bytes 56..63) and the trailing checksum after an edit,
// so the semantic checks behind them are reached.
void Rehash(std::string* b) {
  const bool v1 = b->size() > 8 && (*b)[8] == 1;
  auto hash = [&](const char* p, size_t n) { return v1 ? HashBytes(p, n) : uint64_t(XXH3_64bits(p, n)); };
  uint64_t h = hash(b->data(), 56);
  std::memcpy(b->data() + 56, &h, 8);
  h = hash(b->data(), b->size() - 8);
  std::memcpy(b->data() + b->size() - 8, &h, 8);
}

void ExpectOneLineError(const std::string& msg, const std::string& want) {
  EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg << "\nwanted: " << want;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("F.state: ", 0), 0u) << msg;
}

TEST(StateIoTest, RoundTripIsBitwise) {
  const Config c = SmallConfig();
  for (int64_t pos : {0, 1, 3, 4, 5, 123456789}) {
    SCOPED_TRACE(pos);
    const State s = RandomState(c, pos, uint32_t(pos + 1));
    const StateFileExtras want = SomeExtras(c, pos);
    const std::string bytes = SerializeState(s, c, kFp, want);
    State t = RandomState(c, 2, 99);  // overwritten entirely, unused KV slots included
    const StateFileExtras e = ParseState(bytes, "x", c, kFp, &t);
    ExpectSameState(s, t);
    EXPECT_EQ(e.tokens, want.tokens);
    EXPECT_EQ(e.logits, want.logits);
    EXPECT_EQ(e.app, want.app);
  }
}

TEST(StateIoTest, TokensMustMatchThePosition) {
  const Config c = SmallConfig();
  StateFileExtras e;
  e.tokens = {2, 3};
  EXPECT_THROW(SerializeState(RandomState(c, 3, 1), c, kFp, e), Error);
  e.tokens = {2, 3, 4};
  e.logits = {1.f};  // not a whole vocabulary
  EXPECT_THROW(SerializeState(RandomState(c, 3, 1), c, kFp, e), Error);
}

// Files of format version 1 (rgemma chat /save before version 2): the chat
// extras after the header become the application data. The bytes are built
// here from version 1's documented layout.
TEST(StateIoTest, ReadsVersion1Files) {
  const Config c = SmallConfig();
  const State s = RandomState(c, 3, 4);
  const std::string v2 = SerializeState(s, c, kFp, {});
  std::string extras;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) extras.push_back(char(v >> (8 * i)));
  };
  u32(3);     // flags: started | end of turn
  u32(2);     // two recent tokens
  u32(7), u32(0);  // turns = 7
  u32(5), u32(9);
  const std::string layers = v2.substr(64 + 24, v2.size() - 64 - 24 - 8);
  std::string v1 = v2.substr(0, 64) + extras + layers + std::string(8, '\0');
  v1[8] = 1;
  const uint64_t size = v1.size();
  std::memcpy(v1.data() + 16, &size, 8);
  Rehash(&v1);
  State t(c);
  const StateFileExtras e = ParseState(v1, "F.state", c, kFp, &t);
  ExpectSameState(s, t);
  EXPECT_EQ(e.app, extras);
  EXPECT_TRUE(e.tokens.empty());
  EXPECT_TRUE(e.logits.empty());
}

TEST(StateIoTest, FileRoundTripLeavesNoTempFile) {
  const Config c = SmallConfig();
  const fs::path dir = fs::temp_directory_path() / ("rg_state_io_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "a.state").string();
  const State s = RandomState(c, 6, 5);
  StateFileExtras ex;
  ex.app = "x";
  SaveState(path, s, c, kFp, ex);
  SaveState(path, s, c, kFp, ex);  // overwrites
  size_t files = 0;
  for (auto& f : fs::directory_iterator(dir)) files += f.is_regular_file();
  EXPECT_EQ(files, 1u) << "no temporary file is left";
  State t(c);
  const StateFileExtras e = LoadState(path, c, kFp, &t);
  ExpectSameState(s, t);
  EXPECT_EQ(e.app, "x");
  EXPECT_TRUE(e.tokens.empty());

  // Missing file, a directory, an unwritable destination: one-line errors.
  try {
    LoadState((dir / "missing.state").string(), c, kFp, &t);
    ADD_FAILURE() << "no error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("missing.state: cannot open state file"), std::string::npos) << err.what();
  }
  EXPECT_THROW(LoadState(dir.string(), c, kFp, &t), Error);
  SaveState((dir / "new" / "sub" / "dir.state").string(), s, c, kFp, ex);  // parents are created
  EXPECT_TRUE(fs::exists(dir / "new" / "sub" / "dir.state"));
  std::ofstream((dir / "plain").string()) << "x";
  EXPECT_THROW(SaveState((dir / "plain" / "x.state").string(), s, c, kFp, ex), Error);
  fs::remove_all(dir);
}

TEST(StateIoTest, StoresOnlyUsedKvSlots) {
  const Config c = SmallConfig(/*window=*/4);
  const size_t kv_slot_bytes = 2 * 4 * 4;  // k and v, head_dim 4, f32
  const size_t s0 = SerializeState(State(c), c, kFp, {}).size();
  const size_t s1 = SerializeState(RandomState(c, 1, 1), c, kFp, {}).size();
  const size_t s4 = SerializeState(RandomState(c, 4, 1), c, kFp, {}).size();
  const size_t s1000 = SerializeState(RandomState(c, 1000, 1), c, kFp, {}).size();
  EXPECT_EQ(s1 - s0, kv_slot_bytes);
  EXPECT_EQ(s4 - s0, 4 * kv_slot_bytes);
  EXPECT_EQ(s1000, s4);  // bounded by the window, not the conversation
}

TEST(StateIoTest, RejectsAnotherModel) {
  const Config c = SmallConfig();
  const std::string bytes = SerializeState(RandomState(c, 3, 1), c, kFp, {});
  ModelFingerprint other_weights = kFp;
  other_weights.weights ^= 1;
  ExpectOneLineError(ParseError(bytes, c, other_weights), "saved from a different model (same config, different weights");
  const Config c8 = SmallConfig(/*window=*/8);
  ExpectOneLineError(ParseError(bytes, c8, {HashConfig(c8, /*tied_lm_head=*/true), kFp.weights}), "saved from a different model (config hash");
  EXPECT_NE(HashConfig(SmallConfig(4), /*tied_lm_head=*/true), HashConfig(SmallConfig(8), /*tied_lm_head=*/true));
  Config eps = SmallConfig();
  eps.rms_norm_eps = 1e-5f;
  EXPECT_NE(HashConfig(eps, /*tied_lm_head=*/true), HashConfig(SmallConfig(), /*tied_lm_head=*/true));
}

TEST(StateIoTest, RejectsNewerVersion) {
  const Config c = SmallConfig();
  std::string bytes = SerializeState(RandomState(c, 3, 1), c, kFp, {});
  bytes[8] = 3;
  Rehash(&bytes);
  ExpectOneLineError(ParseError(bytes), "written by a newer rgemma (format version 3; this build reads versions 1 to 2)");
}

TEST(StateIoTest, EveryTruncationIsAnError) {
  const Config c = SmallConfig();
  const std::string bytes = SerializeState(RandomState(c, 3, 1), c, kFp, SomeExtras(c, 3));
  ASSERT_EQ(ParseError(bytes), "");
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string msg = ParseError(std::string_view(bytes).substr(0, n));
    ExpectOneLineError(msg, "truncated state file: ends at byte " + std::to_string(n));
    if (n >= 64) {
      EXPECT_NE(msg.find(" of " + std::to_string(bytes.size())), std::string::npos) << msg;
    }
  }
  ExpectOneLineError(ParseError(bytes + "xyz"), "3 unexpected bytes after its end");
}

TEST(StateIoTest, EveryBitFlipIsAnError) {
  const Config c = SmallConfig();
  const std::string bytes = SerializeState(RandomState(c, 5, 2), c, kFp, SomeExtras(c, 5));
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string b = bytes;
    b[bit / 8] = char(b[bit / 8] ^ (1 << (bit % 8)));
    const std::string msg = ParseError(b);
    EXPECT_FALSE(msg.empty()) << "bit " << bit << " flipped and the file still loaded";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // Flips in the body report the checksum.
  std::string b = bytes;
  b[bytes.size() - 20] ^= 1;
  ExpectOneLineError(ParseError(b), "checksum mismatch");
  b = bytes;
  b[30] ^= 1;
  ExpectOneLineError(ParseError(b), "header checksum mismatch");
}

TEST(StateIoTest, GarbageIsAnError) {
  std::mt19937 rng(7);
  const Config c = SmallConfig();
  const std::string valid = SerializeState(RandomState(c, 4, 3), c, kFp, SomeExtras(c, 4));
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t n = rng() % (2 * valid.size());
    std::string b(n, '\0');
    for (char& ch : b) ch = char(rng());
    if (iter % 2 == 1 && n >= 12) std::memcpy(b.data(), valid.data(), 12);  // a plausible start
    if (iter % 4 == 3 && n >= 64) {
      std::memcpy(b.data(), valid.data(), 64);  // a valid header, garbage body
      Rehash(&b);
    }
    const std::string msg = ParseError(b);
    EXPECT_FALSE(msg.empty()) << "garbage of " << n << " bytes loaded";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  ExpectOneLineError(ParseError("hello world, this is not a state file"), "not an rgemma state file");
  ExpectOneLineError(ParseError(""), "truncated state file: ends at byte 0");
}

// Corruptions that keep both checksums valid (a buggy or hostile writer) are
// caught by the structural checks.
TEST(StateIoTest, StructuralChecksBehindTheChecksum) {
  const Config c = SmallConfig();
  const StateFileExtras ex = SomeExtras(c, 3);
  const std::string valid = SerializeState(RandomState(c, 3, 1), c, kFp, ex);
  auto edit = [&](size_t off, uint64_t v, size_t n) {
    std::string b = valid;
    std::memcpy(b.data() + off, &v, n);
    Rehash(&b);
    return ParseError(b);
  };
  const size_t layers_at = 64 + 24 + 4 * ex.tokens.size() + 4 * ex.logits.size() + ex.app.size() + 2;
  ExpectOneLineError(edit(layers_at, 1, 4), "layer 0 (at byte 0 of the layer section) should be recurrent");
  ExpectOneLineError(edit(48, 4, 4), "4 layers, the model has 3");
  ExpectOneLineError(edit(64, 5, 8), "5 tokens for a state at position 3");
  ExpectOneLineError(edit(72, 10, 8), "10 logits, the vocabulary has 64");
  ExpectOneLineError(edit(80, uint64_t(1) << 40, 8), "bytes of application data (at most");
  ExpectOneLineError(edit(80, 1000, 8), "needs 1000 bytes");
  ExpectOneLineError(edit(88, 64, 4), "token 0 is 64, outside the vocabulary");
  ExpectOneLineError(edit(layers_at - 1, 7, 1), "non-zero padding");
  ExpectOneLineError(edit(12, 1, 4), "header flags");
  ExpectOneLineError(edit(16, 9999, 4), "truncated state file: ends at byte " + std::to_string(valid.size()) + " of 9999");
  {
    std::string b = SerializeState(RandomState(c, 3, 1), c, kFp, {});
    const int64_t pos = 1;  // the attention layer then claims 3 slots instead of 1
    std::memcpy(b.data() + 40, &pos, 8);
    Rehash(&b);
    ExpectOneLineError(ParseError(b), "a state at position 1 of this model has");
  }
}

TEST(StateIoTest, FailedLoadLeavesStateUntouched) {
  const Config c = SmallConfig();
  State s = RandomState(c, 3, 1);
  std::string bytes = SerializeState(RandomState(c, 4, 9), c, kFp, {});
  bytes[bytes.size() - 30] ^= 4;
  EXPECT_THROW(ParseState(bytes, "x", c, kFp, &s), Error);
  ExpectSameState(s, RandomState(c, 3, 1));
}

}  // namespace
}  // namespace rg
