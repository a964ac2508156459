// Tests of the safetensors reader / writer: round trips through
// WriteSafetensors, every malformed-file error, and checkpoint directories
// (single file and sharded with an index).
#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace rg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "rg_st_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Writes 8-byte length + header + data. `n` overrides the length field.
  static void WriteRaw(const std::string& path, const std::string& header,
                       const std::string& data = "", std::optional<uint64_t> n = std::nullopt) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    uint64_t len = n ? *n : header.size();
    for (int i = 0; i < 8; ++i) out.put(char(len >> (8 * i)));
    out << header << data;
  }
  static void WriteBytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  // Runs fn, expects an rg::Error whose message names `file` and contains
  // `phrase`, on one line.
  static void ExpectError(const std::function<void()>& fn, const std::string& file,
                          const std::string& phrase) {
    try {
      fn();
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_THAT(msg, HasSubstr(file));
      EXPECT_THAT(msg, HasSubstr(phrase));
      EXPECT_THAT(msg, Not(HasSubstr("\n")));
      return;
    }
    ADD_FAILURE() << "expected rg::Error containing '" << phrase << "'";
  }

  // Opens a raw file written by WriteRaw and expects a parse error.
  void ExpectOpenError(const std::string& header, const std::string& data,
                       const std::string& phrase, std::optional<uint64_t> n = std::nullopt) {
    const std::string p = Path("bad.safetensors");
    WriteRaw(p, header, data, n);
    ExpectError([&] { SafetensorsFile::Open(p); }, "bad.safetensors", phrase);
  }

  std::string dir_;
};

using SafetensorsRead = SafetensorsTest;
using SafetensorsWrite = SafetensorsTest;
using SafetensorsMalformed = SafetensorsTest;

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

// ------------------------------------------------------------------ valid files

TEST_F(SafetensorsRead, RoundTripAllKinds) {
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x4040};
  const std::vector<uint16_t> f16 = {0x3c00, 0xbc00};
  const std::vector<int32_t> i32 = {1, -2, 3, 2147483647};
  const float scalar = 42.0f;
  const std::string p = Path("model.safetensors");
  WriteSafetensors(p,
                   {{"w.f32", DType::F32, {2, 3}, f32.data(), f32.size() * 4},
                    {"w.bf16", DType::BF16, {3}, bf16.data(), bf16.size() * 2},
                    {"w.f16", DType::F16, {1, 2}, f16.data(), f16.size() * 2},
                    {"w.i32", DType::I32, {4}, i32.data(), i32.size() * 4},
                    {"scalar", DType::F32, {}, &scalar, 4},
                    {"empty", DType::F32, {0}, nullptr, 0}},
                   {{"format", "pt"}, {"note", "hello"}});

  // The header length is a multiple of 8, so the data section is aligned.
  std::ifstream in(p, std::ios::binary);
  uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  EXPECT_EQ(n % 8, 0u);

  auto f = SafetensorsFile::Open(p);
  EXPECT_EQ(f->path(), p);
  ASSERT_EQ(f->tensors().size(), 6u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "hello");

  // Tensors come back in data-offset order, here the written order.
  std::vector<std::string> order;
  for (const auto& t : f->tensors()) order.push_back(t.name);
  EXPECT_THAT(order, ::testing::ElementsAre("w.f32", "w.bf16", "w.f16", "w.i32", "scalar", "empty"));

  const TensorView* t = f->Find("w.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::F32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->numel(), 6);
  EXPECT_EQ(t->nbytes, 24u);
  EXPECT_EQ(t->file, p);
  EXPECT_EQ(Bytes(t->data, t->nbytes), Bytes(f32.data(), 24));

  t = f->Find("w.bf16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::BF16);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(Bytes(t->data, t->nbytes), Bytes(bf16.data(), 6));

  t = f->Find("w.f16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::F16);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Bytes(t->data, t->nbytes), Bytes(f16.data(), 4));

  t = f->Find("w.i32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::I32);
  EXPECT_EQ(Bytes(t->data, t->nbytes), Bytes(i32.data(), 16));

  t = f->Find("scalar");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->shape.empty());
  EXPECT_EQ(t->numel(), 1);
  EXPECT_EQ(t->nbytes, 4u);
  float got;
  std::memcpy(&got, t->data, 4);
  EXPECT_EQ(got, 42.0f);

  t = f->Find("empty");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{0}));
  EXPECT_EQ(t->numel(), 0);
  EXPECT_EQ(t->nbytes, 0u);

  EXPECT_EQ(f->Find("nope"), nullptr);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST_F(SafetensorsRead, TensorsSortedByOffset) {
  // Header keys are in name order, data in reverse name order.
  const std::string p = Path("x.safetensors");
  WriteRaw(p,
           R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},)"
           R"("b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})",
           "bbbaa");
  auto f = SafetensorsFile::Open(p);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "b");
  EXPECT_EQ(f->tensors()[1].name, "a");
  EXPECT_EQ(Bytes(f->Find("a")->data, 2), "aa");
  EXPECT_EQ(Bytes(f->Find("b")->data, 3), "bbb");
}

TEST_F(SafetensorsRead, UnalignedDataAndPaddedHeaderAccepted) {
  // Header of odd length (data not aligned) padded with trailing spaces, and
  // an unknown extra field in the entry (ignored, like the reference).
  const std::string p = Path("x.safetensors");
  WriteRaw(p, R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}   )",
           std::string("\x00\x00\x80\x3f", 4));
  auto f = SafetensorsFile::Open(p);
  const TensorView* t = f->Find("t");
  ASSERT_NE(t, nullptr);
  float v;
  std::memcpy(&v, t->data, 4);
  EXPECT_EQ(v, 1.0f);
  EXPECT_TRUE(f->metadata().empty());
}

TEST_F(SafetensorsRead, EmptyHeaderNoTensors) {
  const std::string p = Path("x.safetensors");
  WriteSafetensors(p, {});
  auto f = SafetensorsFile::Open(p);
  EXPECT_TRUE(f->tensors().empty());
}

TEST_F(SafetensorsRead, ParseFromMemory) {
  std::string buf(8, '\0');
  const std::string header = R"({"t":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})";
  buf[0] = char(header.size());
  buf += header + "xy";
  ParsedSafetensors p =
      ParseSafetensors(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), "mem");
  ASSERT_EQ(p.tensors.size(), 1u);
  EXPECT_EQ(p.tensors[0].file, "mem");
  EXPECT_EQ(p.tensors[0].data, buf.data() + 8 + header.size());
}

TEST(SafetensorsShapeString, Formats) {
  EXPECT_EQ(ShapeString({}), "[]");
  EXPECT_EQ(ShapeString({0}), "[0]");
  EXPECT_EQ(ShapeString({2560, 256}), "[2560, 256]");
}

// ------------------------------------------------------------------ writing

TEST_F(SafetensorsWrite, RejectsSizeMismatch) {
  std::vector<float> v(5);
  const std::string p = Path("w.safetensors");
  ExpectError([&] { WriteSafetensors(p, {{"x", DType::F32, {2, 3}, v.data(), 20}}); },
              "w.safetensors", "data has 20 bytes but dtype F32 shape [2, 3] needs 24");
  EXPECT_FALSE(fs::exists(p));
}

TEST_F(SafetensorsWrite, RejectsDuplicateAndNegative) {
  float v = 0;
  const std::string p = Path("w.safetensors");
  ExpectError(
      [&] {
        WriteSafetensors(p, {{"x", DType::F32, {1}, &v, 4}, {"x", DType::F32, {1}, &v, 4}});
      },
      "w.safetensors", "duplicate name");
  ExpectError([&] { WriteSafetensors(p, {{"x", DType::F32, {-1}, &v, 4}}); }, "w.safetensors",
              "negative dimension");
}

TEST_F(SafetensorsWrite, CreatesMissingParentDirectories) {
  float v = 3;
  const std::string p = Path("no/such/dir/w.safetensors");
  WriteSafetensors(p, {{"x", DType::F32, {1}, &v, 4}});
  EXPECT_EQ(*static_cast<const float*>(SafetensorsFile::Open(p)->Find("x")->data), 3.f);
}

TEST_F(SafetensorsWrite, UnwritablePath) {
  float v = 0;
  const std::string blocker = Path("plain");
  std::ofstream(blocker) << "x";
  const std::string p = blocker + "/w.safetensors";
  ExpectError([&] { WriteSafetensors(p, {{"x", DType::F32, {1}, &v, 4}}); }, p, "is not a directory");
}

TEST_F(SafetensorsWrite, OverwritesAtomically) {
  float a = 1, b = 2;
  const std::string p = Path("w.safetensors");
  WriteSafetensors(p, {{"x", DType::F32, {1}, &a, 4}});
  WriteSafetensors(p, {{"y", DType::F32, {1}, &b, 4}});
  auto f = SafetensorsFile::Open(p);
  EXPECT_EQ(f->Find("x"), nullptr);
  ASSERT_NE(f->Find("y"), nullptr);
}

// ------------------------------------------------------------------ malformed files

TEST_F(SafetensorsMalformed, EmptyFile) {
  const std::string p = Path("bad.safetensors");
  WriteBytes(p, "");
  ExpectError([&] { SafetensorsFile::Open(p); }, "bad.safetensors",
              "file is 0 bytes, shorter than the 8-byte header length");
}

TEST_F(SafetensorsMalformed, ShorterThan8Bytes) {
  const std::string p = Path("bad.safetensors");
  WriteBytes(p, "abcde");
  ExpectError([&] { SafetensorsFile::Open(p); }, "bad.safetensors",
              "file is 5 bytes, shorter than the 8-byte");
}

TEST_F(SafetensorsMalformed, MissingFile) {
  const std::string p = Path("missing.safetensors");
  ExpectError([&] { SafetensorsFile::Open(p); }, "missing.safetensors", "cannot open");
}

TEST_F(SafetensorsMalformed, HeaderLengthBeyondFile) {
  ExpectOpenError("{}", "", "header length 1000 is larger than the 2 bytes that follow it", 1000);
  ExpectOpenError("{}", "", "truncated file?", 1000);
}

TEST_F(SafetensorsMalformed, HeaderLengthAbsurd) {
  ExpectOpenError("{}", "", "header length 1099511627776 exceeds the 100000000-byte limit",
                  uint64_t(1) << 40);
  ExpectOpenError("{}", "", "exceeds the 100000000-byte limit", ~uint64_t(0));
}

TEST_F(SafetensorsMalformed, InvalidJson) {
  ExpectOpenError(R"({"t": {"dtype": "F32",)", "", "is not valid JSON");
  ExpectOpenError("", "", "is not valid JSON");
  ExpectOpenError("{\"a\": \"\xff\xfe\"}", "", "is not valid JSON");  // bad UTF-8
  ExpectOpenError("{}\n\x01\x02", "", "is not valid JSON");           // garbage after
}

TEST_F(SafetensorsMalformed, HeaderNotObject) {
  ExpectOpenError("[1, 2]", "", "header must be a JSON object, found an array");
  ExpectOpenError("\"x\"", "", "header must be a JSON object, found a string");
}

TEST_F(SafetensorsMalformed, EntryNotObject) {
  ExpectOpenError(R"({"model.w": [1, 2]})", "",
                  "tensor 'model.w': expected an object with dtype, shape and data_offsets, "
                  "found an array");
}

TEST_F(SafetensorsMalformed, MissingFields) {
  ExpectOpenError(R"({"t":{"shape":[1],"data_offsets":[0,1]}})", "x",
                  "tensor 't': missing field \"dtype\"");
  ExpectOpenError(R"({"t":{"dtype":"U8","data_offsets":[0,1]}})", "x",
                  "tensor 't': missing field \"shape\"");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1]}})", "x",
                  "tensor 't': missing field \"data_offsets\"");
}

TEST_F(SafetensorsMalformed, WrongFieldTypes) {
  ExpectOpenError(R"({"t":{"dtype":4,"shape":[1],"data_offsets":[0,1]}})", "x",
                  "field \"dtype\" must be a string, found an integer");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", "x",
                  "field \"shape\" must be an array of integers, found a string");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "x",
                  "shape dimension 0 must be a non-negative integer, found a non-integer number");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":{"a":0}}})", "x",
                  "field \"data_offsets\" must be [begin, end]");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x",
                  "field \"data_offsets\" must be [begin, end], found [0]");
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,"1"]}})", "x",
                  "data_offsets must be two non-negative integers");
}

TEST_F(SafetensorsMalformed, UnknownDtype) {
  ExpectOpenError(R"({"t":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x",
                  "tensor 't': unknown dtype 'F8_E4M3'");
}

TEST_F(SafetensorsMalformed, NegativeDim) {
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[2,-3],"data_offsets":[0,1]}})", "x",
                  "tensor 't': shape dimension 1 is negative: -3");
}

TEST_F(SafetensorsMalformed, ShapeOverflow) {
  ExpectOpenError(
      R"({"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", "x",
      "overflow");
  // Zero elements, but the running product overflows int64 (numel() would).
  ExpectOpenError(
      R"({"t":{"dtype":"U8","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})", "",
      "tensor 't': shape [4611686018427387904, 2, 0] has too many elements (overflow)");
  // Fits in int64 elements, but not in bytes.
  ExpectOpenError(R"({"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,1]}})",
                  "x", "overflow");
  // Larger than int64 / uint64 dims.
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})",
                  "x", "must be a non-negative integer");
}

TEST_F(SafetensorsMalformed, NegativeOffsets) {
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "x",
                  "data_offsets must be two non-negative integers, found [-1,0]");
}

TEST_F(SafetensorsMalformed, BeginAfterEnd) {
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "x",
                  "data_offsets [1, 0] have begin > end");
}

TEST_F(SafetensorsMalformed, EndBeyondDataSection) {
  ExpectOpenError(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678",
                  "tensor 't': data_offsets [0, 16] end beyond the data section, which has 8 "
                  "bytes (truncated file?)");
}

TEST_F(SafetensorsMalformed, SizeMismatch) {
  ExpectOpenError(
      R"({"model.layers.0.x.weight":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}})",
      std::string(100, 'x'),
      "bad.safetensors: tensor 'model.layers.0.x.weight': data_offsets [0, 100] hold 100 bytes "
      "but dtype F32 shape [5, 6] needs 120");
}

TEST_F(SafetensorsMalformed, SizeMismatchLongShapeIsCut) {
  std::string dims = "2";
  for (int i = 1; i < 20; ++i) dims += ",1";
  ExpectOpenError(R"({"t":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", "x",
                  "dtype U8 shape [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ... (20 dims)] "
                  "needs 2");
}

TEST_F(SafetensorsMalformed, Overlap) {
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                  "123456", "tensor 'b': data_offsets [2, 6] overlap tensor 'a' at [0, 4]");
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                  "1234", "overlap tensor 'a'");
}

TEST_F(SafetensorsMalformed, Hole) {
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                  R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                  "123456",
                  "tensor 'b': data_offsets [4, 6] leave a hole of 2 unused bytes at [2, 4) "
                  "after tensor 'a'");
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "1234",
                  "at the start of the data section");
}

TEST_F(SafetensorsMalformed, TrailingBytes) {
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "12345",
                  "data section has 5 bytes but the tensors cover only 2 (3 unused trailing bytes)");
}

TEST_F(SafetensorsMalformed, DuplicateName) {
  ExpectOpenError(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                  R"("a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                  "1234", "tensor 'a' appears twice in the header");
}

TEST_F(SafetensorsMalformed, BadMetadata) {
  ExpectOpenError(R"({"__metadata__":["pt"]})", "",
                  "\"__metadata__\" must be an object of string values, found an array");
  ExpectOpenError(R"({"__metadata__":{"format":1}})", "",
                  "\"__metadata__\" key 'format' must be a string, found an integer");
  ExpectOpenError(R"({"__metadata__":{},"__metadata__":{}})", "",
                  "\"__metadata__\" twice");
}

TEST_F(SafetensorsMalformed, ControlCharsInNameStayOnOneLine) {
  ExpectOpenError(R"({"a\nb\u0001":{"dtype":"XX","shape":[],"data_offsets":[0,1]}})", "x",
                  "tensor 'a\\nb\\x01': unknown dtype 'XX'");
}

// ------------------------------------------------------------------ checkpoints

class SafetensorsCheckpointTest : public SafetensorsTest {
 protected:
  // Shard with tensors named `names`, each a U8 [1] holding its index.
  void WriteShard(const std::string& file, const std::vector<std::string>& names) {
    static const uint8_t kBytes[] = {0, 1, 2, 3, 4, 5, 6, 7};
    std::vector<TensorToWrite> ts;
    for (size_t i = 0; i < names.size(); ++i)
      ts.push_back({names[i], DType::U8, {1}, &kBytes[i], 1});
    WriteSafetensors(Path(file), ts);
  }
  void WriteIndex(const std::string& text) {
    std::ofstream(Path("model.safetensors.index.json")) << text;
  }
  void WriteTwoShards() {
    WriteShard("model-00001-of-00002.safetensors", {"b", "a"});
    WriteShard("model-00002-of-00002.safetensors", {"c"});
  }
  void ExpectCheckpointError(const std::string& file, const std::string& phrase) {
    ExpectError([&] { Checkpoint::Open(dir_); }, file, phrase);
  }
};

using SafetensorsSharded = SafetensorsCheckpointTest;

TEST_F(SafetensorsCheckpointTest, SingleModelFile) {
  WriteShard("model.safetensors", {"z", "y"});
  WriteShard("other.safetensors", {"q"});  // ignored: model.safetensors wins
  auto ck = Checkpoint::Open(dir_);
  EXPECT_EQ(ck->Names(), (std::vector<std::string>{"y", "z"}));
  ASSERT_NE(ck->Find("z"), nullptr);
  EXPECT_EQ(*static_cast<const uint8_t*>(ck->Find("z")->data), 0);
  EXPECT_EQ(*static_cast<const uint8_t*>(ck->Find("y")->data), 1);
  EXPECT_EQ(ck->Find("q"), nullptr);
  EXPECT_EQ(ck->files().size(), 1u);
  ck->AdviseHugePages();  // best effort, must not fail
}

TEST_F(SafetensorsCheckpointTest, OnlySafetensorsFile) {
  WriteShard("weights.safetensors", {"a"});
  auto ck = Checkpoint::Open(dir_);
  EXPECT_EQ(ck->Names(), (std::vector<std::string>{"a"}));
}

TEST_F(SafetensorsCheckpointTest, NoCheckpoint) {
  ExpectCheckpointError(dir_, "no model.safetensors or model.safetensors.index.json in " + dir_);
}

TEST_F(SafetensorsCheckpointTest, AmbiguousFiles) {
  WriteShard("a.safetensors", {"a"});
  WriteShard("b.safetensors", {"b"});
  ExpectCheckpointError(dir_, "no model.safetensors or model.safetensors.index.json in");
  ExpectCheckpointError(dir_, "found 2 *.safetensors files");
}

TEST_F(SafetensorsCheckpointTest, DirectoryMissing) {
  ExpectError([&] { Checkpoint::Open(dir_ + "/nope"); }, dir_ + "/nope", "does not exist");
}

TEST_F(SafetensorsCheckpointTest, BadFileNamesFileInError) {
  WriteRaw(Path("model.safetensors"), "{", "");
  ExpectCheckpointError("model.safetensors", "is not valid JSON");
}

TEST_F(SafetensorsSharded, TwoShards) {
  WriteTwoShards();
  WriteIndex(R"({"metadata": {"total_size": 3}, "weight_map": {
      "a": "model-00001-of-00002.safetensors",
      "b": "model-00001-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors"}})");
  auto ck = Checkpoint::Open(dir_);
  EXPECT_EQ(ck->Names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ck->files().size(), 2u);
  const TensorView* c = ck->Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(c->file, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_EQ(*static_cast<const uint8_t*>(c->data), 0);
  EXPECT_EQ(*static_cast<const uint8_t*>(ck->Find("a")->data), 1);
  ck->AdviseHugePages();
}

TEST_F(SafetensorsSharded, MissingShard) {
  WriteShard("model-00001-of-00002.safetensors", {"a"});
  WriteIndex(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                "c": "model-00002-of-00002.safetensors"}})");
  ExpectCheckpointError("model.safetensors.index.json",
                        "shard 'model-00002-of-00002.safetensors' listed in the index does not "
                        "exist");
}

TEST_F(SafetensorsSharded, TensorMissingFromShard) {
  WriteTwoShards();
  WriteIndex(R"({"weight_map": {
      "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors", "d": "model-00002-of-00002.safetensors"}})");
  ExpectCheckpointError("model.safetensors.index.json",
                        "tensor 'd' is listed in shard 'model-00002-of-00002.safetensors' but is "
                        "absent from");
}

TEST_F(SafetensorsSharded, TensorNotInIndex) {
  WriteTwoShards();
  WriteIndex(R"({"weight_map": {
      "a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  ExpectCheckpointError("model-00001-of-00002.safetensors",
                        "tensor 'b' is present in this shard but not listed in");
}

TEST_F(SafetensorsSharded, TensorInWrongShard) {
  WriteTwoShards();
  WriteIndex(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  ExpectCheckpointError("model-00001-of-00002.safetensors",
                        "model.safetensors.index.json places it in shard "
                        "'model-00002-of-00002.safetensors'");
}

TEST_F(SafetensorsSharded, DuplicateAcrossShards) {
  WriteShard("model-00001-of-00002.safetensors", {"a", "b"});
  WriteShard("model-00002-of-00002.safetensors", {"b"});
  WriteIndex(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                "b": "model-00002-of-00002.safetensors"}})");
  ExpectCheckpointError("model.safetensors.index.json", "tensor 'b' is present in two shards");
}

TEST_F(SafetensorsSharded, PathTraversal) {
  WriteShard("model.safetensors", {"a"});
  WriteIndex(R"({"weight_map": {"a": "../model.safetensors"}})");
  ExpectCheckpointError("model.safetensors.index.json",
                        "tensor 'a' names shard '../model.safetensors', expected a plain file "
                        "name");
  WriteIndex(R"({"weight_map": {"a": "/etc/passwd"}})");
  ExpectCheckpointError("model.safetensors.index.json", "names shard '/etc/passwd'");
}

TEST_F(SafetensorsSharded, BadIndex) {
  WriteTwoShards();
  WriteIndex(R"({"weight_map": )");
  ExpectCheckpointError("model.safetensors.index.json", "not valid JSON");
  WriteIndex(R"({"metadata": {}})");
  ExpectCheckpointError("model.safetensors.index.json", "missing \"weight_map\"");
  WriteIndex(R"({"weight_map": ["a"]})");
  ExpectCheckpointError("model.safetensors.index.json", "\"weight_map\" must be an object");
  WriteIndex(R"({"weight_map": {"a": 3}})");
  ExpectCheckpointError("model.safetensors.index.json",
                        "tensor 'a' must map to a shard file name string, found an integer");
}

// Regenerates the fuzzer seed corpus (not run by default):
//   unit_tests --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzCorpus'
TEST_F(SafetensorsTest, DISABLED_WriteFuzzCorpus) {
  const fs::path out = fs::path(RG_SOURCE_DIR) / "tests/fuzz/corpus/safetensors";
  fs::create_directories(out);
  const float f32[6] = {1, 2, 3, 4, 5, 6};
  const uint16_t b16[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
  const int32_t i32[2] = {7, -7};
  WriteSafetensors((out / "valid_mixed.safetensors").string(),
                   {{"model.layers.0.w", DType::F32, {2, 3}, f32, 24},
                    {"model.layers.0.b", DType::BF16, {4}, b16, 8},
                    {"tok", DType::I32, {2}, i32, 8},
                    {"scalar", DType::F16, {}, b16, 2},
                    {"empty", DType::U8, {0, 3}, nullptr, 0}},
                   {{"format", "pt"}});
  WriteSafetensors((out / "valid_empty.safetensors").string(), {});
  auto raw = [&](const std::string& name, const std::string& header, const std::string& data,
                 std::optional<uint64_t> n = std::nullopt) {
    WriteRaw((out / name).string(), header, data, n);
  };
  raw("valid_unaligned.safetensors",
      R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[3,6]},)"
      R"("b":{"dtype":"I16","shape":[1,1],"data_offsets":[0,2]},)"
      R"("c":{"dtype":"BOOL","shape":[1],"data_offsets":[2,3]}}  )",
      "bbcaaa");
  raw("bad_size.safetensors", R"({"t":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}})",
      std::string(100, 'x'));
  raw("bad_overlap.safetensors",
      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
      "123456");
  raw("bad_hole.safetensors", R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "1234");
  raw("bad_header_len.safetensors", "{}", "", 1000);
  raw("bad_json.safetensors", R"({"t":{"dtype":"F64","shape":[1],)", "");
  raw("bad_metadata.safetensors", R"({"__metadata__":{"k":1}})", "");
  raw("bad_dup.safetensors",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
      "12");
}

}  // namespace
}  // namespace rg
