// A fresh directory for each test of a fixture, removed afterwards:
//   class MyTest : public rg::test::TempDirTest {};
//   TEST_F(MyTest, X) { std::ofstream(P("file")) << ...; }
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace rg::test {

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = std::filesystem::temp_directory_path() /
            ("rg_" + std::string(info->test_suite_name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // `rel` inside the test's directory.
  std::string P(const std::string& rel) const { return (root_ / rel).string(); }

  std::filesystem::path root_;
};

}  // namespace rg::test
