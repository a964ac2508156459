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

ChatExtras SomeExtras() {
  ChatExtras e;
  e.started = true;
  e.context_has_end_of_turn = false;
  e.turns = 7;
  e.recent_tokens = {2, 5, 63, 0, 17};
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
  uint64_t h = HashBytes(b->data(), 56);
  std::memcpy(b->data() + 56, &h, 8);
  h = HashBytes(b->data(), b->size() - 8);
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
    const std::string bytes = SerializeState(s, c, kFp, SomeExtras());
    State t = RandomState(c, 2, 99);  // overwritten entirely, unused KV slots included
    const ChatExtras e = ParseState(bytes, "x", c, kFp, &t);
    ExpectSameState(s, t);
    EXPECT_TRUE(e.started);
    EXPECT_FALSE(e.context_has_end_of_turn);
    EXPECT_EQ(e.turns, 7);
    EXPECT_EQ(e.recent_tokens, SomeExtras().recent_tokens);
  }
}

TEST(StateIoTest, FileRoundTripLeavesNoTempFile) {
  const Config c = SmallConfig();
  const fs::path dir = fs::temp_directory_path() / ("rg_state_io_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "a.state").string();
  const State s = RandomState(c, 6, 5);
  ChatExtras ex;
  ex.context_has_end_of_turn = true;
  SaveState(path, s, c, kFp, ex);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  SaveState(path, s, c, kFp, ex);  // overwrites
  State t(c);
  const ChatExtras e = LoadState(path, c, kFp, &t);
  ExpectSameState(s, t);
  EXPECT_FALSE(e.started);
  EXPECT_TRUE(e.context_has_end_of_turn);
  EXPECT_TRUE(e.recent_tokens.empty());

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
  ExpectOneLineError(ParseError(bytes, c8, {HashConfig(c8), kFp.weights}), "saved from a different model (config hash");
  EXPECT_NE(HashConfig(SmallConfig(4)), HashConfig(SmallConfig(8)));
  Config eps = SmallConfig();
  eps.rms_norm_eps = 1e-5f;
  EXPECT_NE(HashConfig(eps), HashConfig(SmallConfig()));
}

TEST(StateIoTest, RejectsNewerVersion) {
  const Config c = SmallConfig();
  std::string bytes = SerializeState(RandomState(c, 3, 1), c, kFp, {});
  bytes[8] = 2;
  Rehash(&bytes);
  ExpectOneLineError(ParseError(bytes), "written by a newer rgemma (format version 2; this build reads version 1)");
}

TEST(StateIoTest, EveryTruncationIsAnError) {
  const Config c = SmallConfig();
  const std::string bytes = SerializeState(RandomState(c, 3, 1), c, kFp, SomeExtras());
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
  const std::string bytes = SerializeState(RandomState(c, 5, 2), c, kFp, SomeExtras());
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
  const std::string valid = SerializeState(RandomState(c, 4, 3), c, kFp, SomeExtras());
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
  const std::string valid = SerializeState(RandomState(c, 3, 1), c, kFp, SomeExtras());
  auto edit32 = [&](size_t off, uint32_t v) {
    std::string b = valid;
    std::memcpy(b.data() + off, &v, 4);
    Rehash(&b);
    return ParseError(b);
  };
  const size_t layers_at = 64 + 16 + 5 * 4;
  ExpectOneLineError(edit32(layers_at, 1), "layer 0 (at byte 100) should be recurrent");
  ExpectOneLineError(edit32(48, 4), "4 layers, the model has 3");
  ExpectOneLineError(edit32(64, 4), "chat flags this build does not know");
  ExpectOneLineError(edit32(68, 1000), "needs 4000 bytes");
  ExpectOneLineError(edit32(80, 64), "recent token 0 is 64, outside the vocabulary");
  ExpectOneLineError(edit32(12, 1), "header flags");
  ExpectOneLineError(edit32(16, 9999), "truncated state file: ends at byte " + std::to_string(valid.size()) + " of 9999");
  {
    std::string b = valid;
    const int64_t pos = 1;  // the attention layer then claims 3 slots instead of 1
    std::memcpy(b.data() + 40, &pos, 8);
    Rehash(&b);
    ExpectOneLineError(ParseError(b), "should be attention with 1 used slots");
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
