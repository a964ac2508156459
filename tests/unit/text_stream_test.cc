// Streaming text with stop strings: text is released as soon as it cannot be
// part of a stop string, and never any of the stop string itself.
#include <gtest/gtest.h>

#include "generate/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace rg {
namespace {

class TextStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tok_ = Tokenizer::Load(std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model").release();
  }
  static void TearDownTestSuite() { delete tok_; }
  // Pushes every id of `text`, returning what was released after each one.
  std::vector<std::string> Stream(TextStream& s, const std::string& text, bool* stopped) {
    std::vector<std::string> out;
    *stopped = false;
    for (int id : tok_->Encode(text)) {
      out.push_back(s.Push(id, stopped));
      if (*stopped) break;
    }
    return out;
  }
  static Tokenizer* tok_;
};
Tokenizer* TextStreamTest::tok_ = nullptr;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += p;
  return s;
}

TEST_F(TextStreamTest, WithoutStopStringsEverythingIsReleased) {
  TextStream s(*tok_, {});
  bool stopped;
  auto parts = Stream(s, "Hello world, this is a test.", &stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(Join(parts) + s.Finish(), "Hello world, this is a test.");
}

TEST_F(TextStreamTest, StopsBeforeTheStopStringAndDropsIt) {
  TextStream s(*tok_, {"STOP"});
  bool stopped;
  auto parts = Stream(s, "one two STOP three", &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(Join(parts), "one two ");
  EXPECT_EQ(s.Finish(), "");
  EXPECT_EQ(s.Push(tok_->Encode("more")[0], &stopped), "");  // nothing after a stop
  EXPECT_TRUE(stopped);
}

TEST_F(TextStreamTest, HoldsBackOnlyAPossiblePrefix) {
  TextStream s(*tok_, {"\n\nUser:"});
  bool stopped = false;
  std::string released;
  for (int id : tok_->Encode("Answer.\n\nUs")) released += s.Push(id, &stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(released, "Answer.");  // "\n\nUs" could still become the stop string
  for (int id : tok_->Encode("e it")) released += s.Push(id, &stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(released + s.Finish(), "Answer.\n\nUse it");  // it did not: all released
}

TEST_F(TextStreamTest, EarliestOfSeveralStopStringsWins) {
  TextStream s(*tok_, {"world", "lo w"});
  bool stopped;
  auto parts = Stream(s, "hello world", &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(Join(parts), "hel");
}

}  // namespace
}  // namespace rg
