// io/file_range_map.h: mappings of file ranges at any offset, their
// population and release, and the huge-page report the weights loader
// decides by.
#include "io/file_range_map.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace rg {
namespace {

std::string WriteFile(const std::string& name, size_t bytes) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::vector<uint8_t> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = uint8_t(i * 2654435761u >> 24);
  FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(std::fwrite(data.data(), 1, bytes, f), bytes);
  std::fclose(f);
  return path;
}

TEST(FileRangeMap, MapsAnyRangeByteForByte) {
  const size_t n = (size_t(5) << 20) + 123;  // past two 2 MiB boundaries
  const std::string path = WriteFile("rg_file_range_map_test.bin", n);
  for (auto [offset, bytes] : {std::pair<size_t, size_t>{0, n}, {1, 1}, {4095, 4098}, {(size_t(2) << 20) + 7, 3000000}}) {
    FileRangeMap m(path, offset, bytes);
    ASSERT_EQ(m.bytes(), bytes);
    EXPECT_LE(reinterpret_cast<uintptr_t>(m.mapping_start()), reinterpret_cast<uintptr_t>(m.data()));
    m.Populate(0, bytes / 2);
    m.Populate(bytes / 2, bytes);
    const uint8_t* p = static_cast<const uint8_t*>(m.data());
    for (size_t i = 0; i < bytes; i += 997) ASSERT_EQ(p[i], uint8_t((offset + i) * 2654435761u >> 24)) << offset << " " << i;
    ASSERT_EQ(p[bytes - 1], uint8_t((offset + bytes - 1) * 2654435761u >> 24));
  }
  std::filesystem::remove(path);
}

TEST(FileRangeMap, ReportsAFractionPerMapping) {
  const std::string path = WriteFile("rg_file_range_map_test2.bin", size_t(3) << 20);
  FileRangeMap a(path, 0, size_t(3) << 20), b(path, 100, 5000);
  a.Populate(0, a.bytes());
  b.Populate(0, b.bytes());
  const std::vector<double> f = HugeMappedFractions({&a, &b});
  ASSERT_EQ(f.size(), 2u);
  for (double x : f) {
    EXPECT_GE(x, 0.0);
    EXPECT_LE(x, 1.0);
  }
  EXPECT_EQ(f[1], 0.0);  // 5000 bytes cannot hold a 2 MiB page
  std::filesystem::remove(path);
}

// Resident bytes of the mapping that starts at `start` (its /proc/self/smaps
// entry), or -1 when not found.
long long ResidentBytes(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::ostringstream want;
  want << std::hex << reinterpret_cast<uintptr_t>(start) << "-";
  std::string line;
  bool in = false;
  while (std::getline(smaps, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(' ') > line.find('-'))
      in = line.rfind(want.str(), 0) == 0;
    else if (in && line.rfind("Rss:", 0) == 0)
      return std::stoll(line.substr(4)) * 1024;
  }
  return -1;
}

// Release drops the released pages from the process (what keeps a copied
// matrix and its source from being resident in full together at load) and
// the range still reads the file's bytes afterwards.
TEST(FileRangeMap, ReleaseDropsPagesAndTheRangeStillReads) {
  const size_t n = size_t(8) << 20, offset = 4096 + 5;
  const std::string path = WriteFile("rg_file_range_map_test3.bin", n + offset);
  FileRangeMap m(path, offset, n);
  m.Populate(0, n);
  const long long before = ResidentBytes(m.mapping_start());
  if (before < 0) GTEST_SKIP() << "no /proc/self/smaps entry for the mapping";
  ASSERT_GE(before, (long long)(n) - 8192);
  m.Release(0, n / 2);
  const long long after = ResidentBytes(m.mapping_start());
  EXPECT_LE(after, before - (long long)(n / 2) + 8192) << "before " << before;
  const uint8_t* p = static_cast<const uint8_t*>(m.data());
  for (size_t i = 0; i < n; i += 4093) ASSERT_EQ(p[i], uint8_t((offset + i) * 2654435761u >> 24)) << i;
  m.Release(n, n);  // empty: nothing happens
  m.Release(1, 2);  // inside one page: nothing to release
  std::filesystem::remove(path);
}

TEST(FileRangeMap, MissingFileNamesIt) {
  try {
    FileRangeMap m("/nonexistent/rg_no_such_file", 0, 10);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/rg_no_such_file"), std::string::npos);
  }
}

}  // namespace
}  // namespace rg
