// Tokenizer, StreamDecoder, UTF-8 helpers and chat template.
// Needs models/tokenizer/tokenizer.model and tests/data/tokenizer/golden.jsonl.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rg {
namespace {

const std::string kModelPath = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";
const std::string kGoldenPath = std::string(RG_TEST_DATA) + "/tokenizer/golden.jsonl";
constexpr std::string_view kFFFD = "\xEF\xBF\xBD";

// One tokenizer for the whole binary (loading takes ~0.2 s).
const Tokenizer& Tok() {
  static const std::unique_ptr<Tokenizer> tok = Tokenizer::Load(kModelPath);
  return *tok;
}

struct GoldenCase {
  std::string text;
  std::vector<int> ids;
};

const std::vector<GoldenCase>& Golden() {
  static const std::vector<GoldenCase> cases = [] {
    std::vector<GoldenCase> out;
    std::ifstream in(kGoldenPath);
    EXPECT_TRUE(in.good()) << "cannot open " << kGoldenPath;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      out.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int>>()});
    }
    return out;
  }();
  return cases;
}

std::string Join(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s;
}

int ByteId(unsigned char b) { return 217 + b; }

// Message of the rg::Error thrown by fn, or "" (and a test failure) if none.
template <class Fn>
std::string ErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected rg::Error";
  return "";
}

// Feeds ids one at a time; returns the chunks (Flush output last).
std::vector<std::string> StreamChunks(const std::vector<int>& ids) {
  StreamDecoder dec(Tok());
  std::vector<std::string> chunks;
  for (int id : ids) chunks.push_back(dec.Push(id));
  chunks.push_back(dec.Flush());
  return chunks;
}

std::string Concat(const std::vector<std::string>& chunks) {
  std::string s;
  for (const auto& c : chunks) s += c;
  return s;
}

// ---------------------------------------------------------------- Tokenizer

TEST(TokenizerTest, LoadsGemmaVocabulary) {
  const Tokenizer& t = Tok();
  EXPECT_EQ(t.vocab_size(), 256000);
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.unk_id(), 3);
  EXPECT_EQ(t.start_of_turn_id(), 106);
  EXPECT_EQ(t.end_of_turn_id(), 107);
  EXPECT_TRUE(t.IsControl(0));
  EXPECT_TRUE(t.IsControl(1));
  EXPECT_TRUE(t.IsControl(2));
  EXPECT_FALSE(t.IsControl(3));
  EXPECT_TRUE(t.IsUnknown(3));
  EXPECT_FALSE(t.IsControl(106));  // user-defined, not control
  EXPECT_EQ(t.Piece(106), "<start_of_turn>");
  EXPECT_EQ(t.Piece(107), "<end_of_turn>");
  EXPECT_EQ(t.Piece(2), "<bos>");
  EXPECT_TRUE(t.IsByte(217));
  EXPECT_EQ(t.Piece(217), "<0x00>");
  EXPECT_EQ(t.ByteValue(217), 0);
  EXPECT_EQ(t.Piece(226), "<0x09>");
  EXPECT_EQ(t.ByteValue(472), 255);
  EXPECT_FALSE(t.IsByte(473));
  EXPECT_EQ(t.ByteValue(473), -1);
  int n_byte = 0, n_control = 0;
  for (int id = 0; id < t.vocab_size(); ++id) {
    n_byte += t.IsByte(id);
    n_control += t.IsControl(id);
  }
  EXPECT_EQ(n_byte, 256);
  EXPECT_EQ(n_control, 3);
  EXPECT_EQ(t.Surface(2), "");
  EXPECT_EQ(t.Surface(139), "  ");  // "▁▁" user-defined
}

TEST(TokenizerTest, GoldenEncodingsMatchExactly) {
  const auto& golden = Golden();
  ASSERT_EQ(golden.size(), 500u);
  int mismatches = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const auto got = Tok().Encode(golden[i].text);
    if (got != golden[i].ids) {
      ++mismatches;
      ADD_FAILURE() << "golden line " << i + 1 << " text=" << nlohmann::json(golden[i].text).dump()
                    << "\n expected: " << Join(golden[i].ids) << "\n got:      " << Join(got);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << golden.size() << " golden lines";
}

TEST(TokenizerTest, PublishedGemmaEncodings) {
  const std::vector<std::pair<std::string, std::vector<int>>> cases = {
      {"Hello world!", {4521, 2134, 235341}},
      {"hello world", {17534, 2134}},
      {"hello jặy", {17534, 678, 236245, 235267}},
      {"the quick brown fox", {1175, 4320, 8426, 25341}},
      {"OpenCV", {6047, 17813}},
      {"2024", {235284, 235276, 235284, 235310}},
      {"CAT", {29492}},
      {"cat", {4991}},
      {"\t", {226}},
      {"", {}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(Tok().Encode(text), ids) << text;
}

// decode(encode(s)) == s, except that an input U+2581 decodes as ' ' (README).
TEST(TokenizerTest, GoldenRoundTrip) {
  int with_lower_block = 0;
  for (const auto& g : Golden()) {
    const std::string_view sp = "\xE2\x96\x81";
    std::string expected;
    std::string_view rest = g.text;
    if (rest.find(sp) != std::string_view::npos) ++with_lower_block;
    for (size_t pos; (pos = rest.find(sp)) != std::string_view::npos;) {
      expected.append(rest.substr(0, pos)).push_back(' ');
      rest.remove_prefix(pos + sp.size());
    }
    expected.append(rest);
    EXPECT_EQ(Tok().Decode(Tok().Encode(g.text)), expected);
    EXPECT_EQ(Tok().Decode(g.ids), expected);
  }
  EXPECT_EQ(with_lower_block, 10);  // as documented in the shared README
}

TEST(TokenizerTest, ControlTokenTextIsNotMatched) {
  EXPECT_EQ(Tok().Encode("<bos>"), (std::vector<int>{235322, 14084, 235313}));
  for (const char* s : {"<bos>", "<eos>", "<pad>", "<unk>", "x<bos>y"}) {
    for (int id : Tok().Encode(s)) {
      EXPECT_FALSE(Tok().IsControl(id)) << s;
      EXPECT_NE(id, 3) << s;
    }
  }
  // User-defined pieces are matched in text (sentencepiece semantics).
  EXPECT_EQ(Tok().Encode("<start_of_turn>"), std::vector<int>{106});
  EXPECT_EQ(Tok().Encode("<end_of_turn>"), std::vector<int>{107});
}

TEST(TokenizerTest, InvalidUtf8InputNamesByteOffset) {
  std::string msg = ErrorOf([] { Tok().Encode("ab\xFF" "cd"); });
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 2"), std::string::npos) << msg;
  msg = ErrorOf([] { Tok().Encode("abc\xE2\x82"); });  // truncated at the end
  EXPECT_NE(msg.find("offset 3"), std::string::npos) << msg;
  msg = ErrorOf([] { Tok().Encode("\xED\xA0\x80"); });  // surrogate
  EXPECT_NE(msg.find("offset 0"), std::string::npos) << msg;
}

TEST(TokenizerTest, MissingFileNamesPath) {
  const std::string path = ::testing::TempDir() + "/rg_no_such_tokenizer.model";
  const std::string msg = ErrorOf([&] { Tokenizer::Load(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(TokenizerTest, CorruptFileNamesPath) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir();
  std::mt19937 rng(1234);
  for (size_t size : {size_t(1), size_t(16), size_t(4096), size_t(100000)}) {
    const std::string path = dir + "/rg_corrupt_tokenizer_" + std::to_string(size) + ".model";
    {
      std::ofstream out(path, std::ios::binary);
      for (size_t i = 0; i < size; ++i) out.put(char(rng() & 0xFF));
    }
    const std::string msg = ErrorOf([&] { Tokenizer::Load(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    fs::remove(path);
  }
  // Empty file and a directory.
  const std::string empty = dir + "/rg_empty_tokenizer.model";
  { std::ofstream out(empty, std::ios::binary); }
  std::string msg = ErrorOf([&] { Tokenizer::Load(empty); });
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;
  fs::remove(empty);
  msg = ErrorOf([&] { Tokenizer::Load(dir); });
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  // A file that is valid protobuf-wise but not a model: a golden.jsonl.
  msg = ErrorOf([&] { Tokenizer::Load(kGoldenPath); });
  EXPECT_NE(msg.find(kGoldenPath), std::string::npos) << msg;
}

TEST(TokenizerTest, OutOfRangeIdsThrow) {
  std::string msg = ErrorOf([] { Tok().Decode({4521, 256000}); });
  EXPECT_NE(msg.find("256000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 1"), std::string::npos) << msg;
  msg = ErrorOf([] { Tok().Decode({-1}); });
  EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
  ErrorOf([] { Tok().Piece(256000); });
  ErrorOf([] { Tok().IsControl(-5); });
  ErrorOf([] { Tok().IsByte(1 << 30); });
  ErrorOf([] {
    StreamDecoder dec(Tok());
    dec.Push(256000);
  });
}

TEST(TokenizerTest, DecodeRules) {
  EXPECT_EQ(Tok().Decode({2, 4521, 2134, 1}), "Hello world");  // control -> ""
  EXPECT_EQ(Tok().Decode({226}), "\t");                       // byte piece
  EXPECT_EQ(Tok().Decode({139}), "  ");                       // "▁▁"
  // No leading-space stripping (add_dummy_prefix is false).
  const auto ids = Tok().Encode(" leading");
  EXPECT_EQ(Tok().Decode(ids), " leading");
  EXPECT_EQ(Tok().Decode({2, ids[0]}).substr(0, 1), " ");
}

// ---------------------------------------------------------------- StreamDecoder

TEST(TokenizerStreamTest, MatchesDecodeOnGolden) {
  for (const auto& g : Golden()) {
    const auto chunks = StreamChunks(g.ids);
    for (const auto& c : chunks) EXPECT_TRUE(IsValidUtf8(c)) << g.text;
    EXPECT_EQ(Concat(chunks), Tok().Decode(g.ids)) << g.text;
  }
}

// Random id sequences heavy in byte pieces (valid and invalid UTF-8), mixed
// with control, <unk>, user-defined and normal pieces: the stream must equal
// Decode() exactly and every chunk must be valid UTF-8.
TEST(TokenizerStreamTest, MatchesDecodeOnRandomSequences) {
  std::mt19937 rng(42);
  const std::vector<int> specials = {0, 1, 2, 3, 106, 107, 108, 139, 169, 255968, 255999};
  // Bytes of real multi-byte characters, so that valid sequences are common.
  const std::string utf8_text = "é€🫩中😀ж\xF4\x8F\xBF\xBF";
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<int> ids;
    const int len = 1 + int(rng() % 24);
    for (int k = 0; k < len; ++k) {
      switch (rng() % 6) {
        case 0: ids.push_back(ByteId(rng() & 0xFF)); break;
        case 1:
        case 2: {  // a run of bytes from the valid text, possibly cut anywhere
          const size_t start = rng() % utf8_text.size();
          const size_t n = 1 + rng() % 5;
          for (size_t b = start; b < std::min(utf8_text.size(), start + n); ++b) {
            ids.push_back(ByteId(static_cast<unsigned char>(utf8_text[b])));
          }
          break;
        }
        case 3: ids.push_back(specials[rng() % specials.size()]); break;
        default: ids.push_back(int(rng() % 256000)); break;
      }
    }
    const auto chunks = StreamChunks(ids);
    for (const auto& c : chunks) ASSERT_TRUE(IsValidUtf8(c)) << Join(ids);
    ASSERT_EQ(Concat(chunks), Tok().Decode(ids)) << Join(ids);
  }
}

TEST(TokenizerStreamTest, SplitEmojiIsHeldUntilComplete) {
  const std::string emoji = "🫩";  // F0 9F AB A9, not in the vocabulary
  ASSERT_EQ(emoji, "\xF0\x9F\xAB\xA9");
  const std::vector<int> emoji_ids = {ByteId(0xF0), ByteId(0x9F), ByteId(0xAB), ByteId(0xA9)};
  ASSERT_EQ(Tok().Encode(emoji), emoji_ids);

  // "Hello" <F0> <9F> <AB> <A9> " world" "!" <F0> <9F> <AB> <A9>
  const std::vector<int> ids = {4521,         ByteId(0xF0), ByteId(0x9F), ByteId(0xAB),
                                ByteId(0xA9), 2134,         235341,       ByteId(0xF0),
                                ByteId(0x9F), ByteId(0xAB), ByteId(0xA9)};
  const std::vector<std::string> expected = {"Hello", "", "", "", emoji, " world", "!",
                                             "",      "", "", emoji, /*Flush*/ ""};
  EXPECT_EQ(StreamChunks(ids), expected);
  EXPECT_EQ(Concat(expected), Tok().Decode(ids));
  EXPECT_EQ(Tok().Decode(ids), "Hello🫩 world!🫩");
}

TEST(TokenizerStreamTest, LoneContinuationByteBecomesReplacement) {
  const std::vector<int> ids = {4521, ByteId(0x80), 2134};
  const std::vector<std::string> expected = {"Hello", std::string(kFFFD), " world", ""};
  EXPECT_EQ(StreamChunks(ids), expected);
  EXPECT_EQ(Concat(expected), Tok().Decode(ids));
}

TEST(TokenizerStreamTest, TruncatedSequenceThenNormalPiece) {
  // F0 9F AB then " world": the run ends, each byte becomes U+FFFD (as
  // sentencepiece's Decode does), followed by the piece text.
  const std::vector<int> ids = {ByteId(0xF0), ByteId(0x9F), ByteId(0xAB), 2134};
  const std::string fffd(kFFFD);
  const std::vector<std::string> expected = {"", "", "", fffd + fffd + fffd + " world", ""};
  EXPECT_EQ(StreamChunks(ids), expected);
  EXPECT_EQ(Concat(expected), Tok().Decode(ids));
}

TEST(TokenizerStreamTest, InvalidBytesAndFlush) {
  const std::string fffd(kFFFD);
  // Bytes that can never start a character are replaced at once.
  EXPECT_EQ(StreamChunks({ByteId(0xFF)}), (std::vector<std::string>{fffd, ""}));
  EXPECT_EQ(StreamChunks({ByteId(0xC0), ByteId(0x80)}),  // overlong
            (std::vector<std::string>{fffd, fffd, ""}));
  // E0 must be followed by A0..BF: E0 80 is decided invalid at the 2nd byte.
  EXPECT_EQ(StreamChunks({ByteId(0xE0), ByteId(0x80)}),
            (std::vector<std::string>{"", fffd + fffd, ""}));
  // Incomplete tail at the end: Flush() replaces each pending byte.
  EXPECT_EQ(StreamChunks({ByteId(0xE2), ByteId(0x82)}),
            (std::vector<std::string>{"", "", fffd + fffd}));
  // A valid character completes after an invalid lead byte.
  EXPECT_EQ(StreamChunks({ByteId(0xF5), ByteId(0xE2), ByteId(0x82), ByteId(0xAC)}),
            (std::vector<std::string>{fffd, "", "", "€", ""}));
  // A control piece ends the byte run too (sentencepiece semantics).
  const std::vector<int> ids = {ByteId(0xF0), ByteId(0x9F), 1, ByteId(0xAB), ByteId(0xA9)};
  const auto chunks = StreamChunks(ids);
  EXPECT_EQ(chunks, (std::vector<std::string>{"", "", fffd + fffd, fffd, fffd, ""}));
  EXPECT_EQ(Concat(chunks), Tok().Decode(ids));
  // Reusable after Flush.
  StreamDecoder dec(Tok());
  EXPECT_EQ(dec.Push(ByteId(0xE2)), "");
  EXPECT_TRUE(dec.has_pending());
  EXPECT_EQ(dec.Flush(), fffd);
  EXPECT_FALSE(dec.has_pending());
  EXPECT_EQ(dec.Push(4521), "Hello");
}

// ---------------------------------------------------------------- UTF-8

TEST(Utf8Test, ValidStrings) {
  for (const char* s : {"", "plain ascii", "é", "€", "🫩", "中文 text", "\xEF\xBF\xBD",
                        "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF", "\xEE\x80\x80"}) {
    size_t bad = 99;
    EXPECT_TRUE(IsValidUtf8(s, &bad)) << s;
    EXPECT_EQ(bad, 99u);
    EXPECT_EQ(SanitizeUtf8(s), s);
  }
}

TEST(Utf8Test, InvalidStringsReportOffset) {
  const std::vector<std::pair<std::string, size_t>> cases = {
      {"\x80", 0},                  // lone continuation
      {"ab\xBF", 2},                // lone continuation
      {"\xC0\xAF", 0},              // overlong 2-byte
      {"\xC1\xBF", 0},              // overlong 2-byte
      {"x\xE0\x80\x80", 1},         // overlong 3-byte
      {"\xED\xA0\x80", 0},          // surrogate U+D800
      {"\xF0\x80\x80\x80", 0},      // overlong 4-byte
      {"\xF4\x90\x80\x80", 0},      // > U+10FFFF
      {"\xF5\x80\x80\x80", 0},      // bad lead
      {"\xFF", 0},                  // bad lead
      {"abc\xE2\x82", 3},           // truncated at the end
      {"\xE2\x82" "abc", 0},        // truncated before ASCII
      {"🫩\xF0\x9F\xAB", 4},        // truncated emoji after a valid one
  };
  for (const auto& [s, offset] : cases) {
    size_t bad = 99;
    EXPECT_FALSE(IsValidUtf8(s, &bad)) << s;
    EXPECT_EQ(bad, offset) << s;
    EXPECT_TRUE(IsValidUtf8(SanitizeUtf8(s)));
  }
}

TEST(Utf8Test, SanitizeReplacesEachInvalidByte) {
  const std::string r(kFFFD);
  EXPECT_EQ(SanitizeUtf8("a\x80z"), "a" + r + "z");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\xAB"), r + r + r);
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\xAB\xA9"), "🫩");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82" "€"), r + r + "€");
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), r + r + r);
}

TEST(Utf8Test, StreamSanitizerMatchesBatchOnRandomChunks) {
  std::mt19937 rng(7);
  const std::string pool = "aé€🫩\x80\xBF\xC0\xE0\xED\xF0\xF4\xF5\xFF\xA0\x9F";
  for (int iter = 0; iter < 5000; ++iter) {
    std::string input;
    const int len = int(rng() % 40);
    for (int i = 0; i < len; ++i) input.push_back(pool[rng() % pool.size()]);
    Utf8StreamSanitizer s;
    std::string out;
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t n = std::min(input.size() - pos, size_t(rng() % 5));
      std::string chunk;
      s.Push(std::string_view(input).substr(pos, n), &chunk);
      ASSERT_TRUE(IsValidUtf8(chunk));
      out += chunk;
      pos += n;
    }
    std::string tail;
    s.Finish(&tail);
    ASSERT_TRUE(IsValidUtf8(tail));
    out += tail;
    ASSERT_EQ(out, SanitizeUtf8(input));
  }
}

// ---------------------------------------------------------------- chat template

const std::vector<int> kGoldenChat = {106, 1645, 108, 1841, 603, 235248, 235284, 235340,
                                      235284, 235336, 107, 108, 106, 2516, 108};

TEST(TokenizerChatTest, GoldenSingleTurn) {
  // The rendered string itself encodes to the golden ids...
  EXPECT_EQ(Tok().Encode("<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"),
            kGoldenChat);
  // ... and so do all our id-level renderings.
  EXPECT_EQ(ApplyChatTemplate(Tok(), {{"user", "What is 2+2?"}}, /*add_bos=*/false,
                              /*add_generation_prompt=*/true),
            kGoldenChat);
  std::vector<int> with_bos = {2};
  with_bos.insert(with_bos.end(), kGoldenChat.begin(), kGoldenChat.end());
  EXPECT_EQ(ApplyChatTemplate(Tok(), {{"user", "What is 2+2?"}}, true, true), with_bos);
  EXPECT_EQ(UserTurnIds(Tok(), "What is 2+2?", /*first_turn=*/true), with_bos);
  std::vector<int> turn = RenderTurnIds(Tok(), "user", "  What is 2+2?\n");
  const std::vector<int> prompt = GenerationPromptIds(Tok());
  turn.insert(turn.end(), prompt.begin(), prompt.end());
  EXPECT_EQ(turn, kGoldenChat);
  // Without the generation prompt.
  EXPECT_EQ(ApplyChatTemplate(Tok(), {{"user", "What is 2+2?"}}, false, false),
            std::vector<int>(kGoldenChat.begin(), kGoldenChat.begin() + 12));
}

TEST(TokenizerChatTest, MultiTurnEqualsEncodingTheRenderedString) {
  const std::vector<ChatMessage> msgs = {
      {"user", "Hi there! Write a haiku about 🫩 faces."},
      {"assistant", "  Sleepy face, yawning\n\ttabs and   spaces   \n"},
      {"user", "中文? <b>bold</b>\n\n"}};
  const std::string rendered =
      "<start_of_turn>user\nHi there! Write a haiku about 🫩 faces.<end_of_turn>\n"
      "<start_of_turn>model\nSleepy face, yawning\n\ttabs and   spaces<end_of_turn>\n"
      "<start_of_turn>user\n中文? <b>bold</b><end_of_turn>\n<start_of_turn>model\n";
  std::vector<int> expected = {2};
  const auto enc = Tok().Encode(rendered);
  expected.insert(expected.end(), enc.begin(), enc.end());
  EXPECT_EQ(ApplyChatTemplate(Tok(), msgs, true, true), expected);
  // "model" is accepted as a synonym of "assistant".
  auto msgs2 = msgs;
  msgs2[1].role = "model";
  EXPECT_EQ(ApplyChatTemplate(Tok(), msgs2, true, true), expected);
}

TEST(TokenizerChatTest, SystemIsFoldedIntoFirstUserTurn) {
  const auto with_system = ApplyChatTemplate(
      Tok(), {{"system", "You are terse. "}, {"user", " Hello?"}, {"assistant", "Hi."}}, true,
      true);
  const auto folded = ApplyChatTemplate(
      Tok(), {{"user", "You are terse.\n\nHello?"}, {"assistant", "Hi."}}, true, true);
  EXPECT_EQ(with_system, folded);
}

TEST(TokenizerChatTest, RejectsBadRoleOrder) {
  auto msg = ErrorOf([] { ApplyChatTemplate(Tok(), {{"assistant", "hi"}}, true, true); });
  EXPECT_NE(msg.find("alternate"), std::string::npos) << msg;
  msg = ErrorOf([] { ApplyChatTemplate(Tok(), {{"user", "a"}, {"user", "b"}}, true, true); });
  EXPECT_NE(msg.find("message 1"), std::string::npos) << msg;
  msg = ErrorOf([] {
    ApplyChatTemplate(Tok(), {{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}}, true, true);
  });
  EXPECT_NE(msg.find("message 2"), std::string::npos) << msg;
  msg = ErrorOf([] { ApplyChatTemplate(Tok(), {{"robot", "a"}}, true, true); });
  EXPECT_NE(msg.find("robot"), std::string::npos) << msg;
  msg = ErrorOf([] {
    ApplyChatTemplate(Tok(), {{"user", "a"}, {"system", "b"}}, true, true);
  });
  EXPECT_NE(msg.find("system"), std::string::npos) << msg;
  ErrorOf([] { ApplyChatTemplate(Tok(), {{"system", "a"}}, true, true); });
  ErrorOf([] { ApplyChatTemplate(Tok(), {{"system", "a"}, {"assistant", "b"}}, true, true); });
  ErrorOf([] { ApplyChatTemplate(Tok(), {}, true, true); });
  msg = ErrorOf([] { ApplyChatTemplate(Tok(), {{"user", "ok"}, {"assistant", "\xFF"}}, true, true); });
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
}

TEST(TokenizerChatTest, TrimMatchesJinja) {
  EXPECT_EQ(TrimChatContent("  \t\nhi there \r\n"), "hi there");
  EXPECT_EQ(TrimChatContent("\xC2\xA0hi\xE3\x80\x80"), "hi");  // NBSP, ideographic space
  EXPECT_EQ(TrimChatContent("\xE2\x80\x83x\xE2\x80\xA8"), "x");  // em space, line sep
  EXPECT_EQ(TrimChatContent("é"), "é");
  EXPECT_EQ(TrimChatContent("\xE2\x96\x81x"), "\xE2\x96\x81x");  // U+2581 is not whitespace
  EXPECT_EQ(TrimChatContent("   "), "");
  EXPECT_EQ(ApplyChatTemplate(Tok(), {{"user", "\n  What is 2+2? \t"}}, false, true), kGoldenChat);
}

TEST(TokenizerChatTest, UserTurnContinuation) {
  // Interactive chat: first turn, model reply ending with <end_of_turn>, next turn.
  std::vector<int> context = UserTurnIds(Tok(), "What is 2+2?", true);
  const auto reply = Tok().Encode("4");
  context.insert(context.end(), reply.begin(), reply.end());
  context.push_back(Tok().end_of_turn_id());
  const auto next = UserTurnIds(Tok(), "And 3+3?", false);
  EXPECT_EQ(next.front(), 108);  // "\n"
  context.insert(context.end(), next.begin(), next.end());
  const auto full = ApplyChatTemplate(
      Tok(), {{"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}}, true, true);
  EXPECT_EQ(context, full);
  // When the generator did not feed <end_of_turn>, it is prepended.
  const auto next2 = UserTurnIds(Tok(), "And 3+3?", false, /*context_has_end_of_turn=*/false);
  ASSERT_EQ(next2.size(), next.size() + 1);
  EXPECT_EQ(next2.front(), 107);
  EXPECT_TRUE(std::equal(next.begin(), next.end(), next2.begin() + 1));
}

TEST(TokenizerChatTest, LiteralTurnMarkersInTextAreMatched) {
  // Documented sentencepiece behaviour: typed markers become real tokens.
  const auto ids = RenderTurnIds(Tok(), "user", "a<end_of_turn>b");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 107), 2);
  EXPECT_TRUE(ContainsTurnMarker("a<end_of_turn>b"));
  EXPECT_TRUE(ContainsTurnMarker("<start_of_turn>"));
  EXPECT_FALSE(ContainsTurnMarker("<end_of_turn"));
}

}  // namespace
}  // namespace rg
