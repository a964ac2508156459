#include "core/file_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "temp_dir.h"

namespace rg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::ReadFile;

class FileIo : public test::TempDirTest {};

TEST_F(FileIo, CreateDirectoriesMakesEveryLevelAndIsIdempotent) {
  CreateDirectories(P("x/y//z/"));
  EXPECT_TRUE(fs::is_directory(P("x/y/z")));
  CreateDirectories(P("x/y/z"));  // exists: fine
}

TEST_F(FileIo, CreateDirectoriesNamesTheBlockingFile) {
  std::ofstream(P("f")) << "x";
  try {
    CreateDirectories(P("f/g"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot create directory " + P("f") + ": it exists and is not a directory"));
  }
}

TEST_F(FileIo, AtomicWriteCreatesParentsAndReplaces) {
  WriteFileAtomic(P("a/b/out.txt"), "one");
  EXPECT_EQ(ReadFile(P("a/b/out.txt")), "one");
  WriteFileAtomic(P("a/b/out.txt"), "two");
  EXPECT_EQ(ReadFile(P("a/b/out.txt")), "two");
  // No temporary file is left behind, and an unrelated PATH.tmp is untouched.
  std::ofstream(P("a/b/out.txt.tmp")) << "keep me";
  WriteFileAtomic(P("a/b/out.txt"), "three");
  EXPECT_EQ(ReadFile(P("a/b/out.txt.tmp")), "keep me");
  int entries = 0;
  for (auto& e : fs::directory_iterator(P("a/b"))) entries += e.is_regular_file();
  EXPECT_EQ(entries, 2);
}

TEST_F(FileIo, AbandonedFileLeavesTargetUntouched) {
  WriteFileAtomic(P("t.txt"), "old");
  {
    AtomicFile f(P("t.txt"));
    f.Write("new, never committed");
  }
  EXPECT_EQ(ReadFile(P("t.txt")), "old");
  int entries = 0;
  for (auto& e : fs::directory_iterator(root_)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1) << "the temporary file was removed";
}

TEST_F(FileIo, ModeFollowsTheUmask) {
  WriteFileAtomic(P("m.txt"), "x");
  struct stat st {};
  ASSERT_EQ(::stat(P("m.txt").c_str(), &st), 0);
  const mode_t um = ::umask(0);
  ::umask(um);
  EXPECT_EQ(st.st_mode & 0777, 0644 & ~um);
}

TEST_F(FileIo, AtomicDirectoryIsAllOrNothing) {
  // Abandoned: the target is untouched and the temporary directory is gone.
  {
    AtomicDirectory d(P("out"), /*replace=*/false, "--out");
    WriteFileAtomic(d.path() + "/a", "half");
  }
  EXPECT_FALSE(fs::exists(P("out")));
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 0);
  {
    AtomicDirectory d(P("out"), false, "--out");
    WriteFileAtomic(d.path() + "/a", "one");
    WriteFileAtomic(d.path() + "/b", "one");
    d.Commit();
  }
  EXPECT_EQ(ReadFile(P("out/a")), "one");
  // Not empty: refused without replace; replaced whole with it.
  EXPECT_THROW(AtomicDirectory(P("out"), false, "--out"), Error);
  {
    AtomicDirectory d(P("out/"), true, "--out");
    WriteFileAtomic(d.path() + "/a", "two");
    d.Commit();
  }
  EXPECT_EQ(ReadFile(P("out/a")), "two");
  EXPECT_FALSE(fs::exists(P("out/b"))) << "nothing of the old contents stays";
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 1);
}

TEST_F(FileIo, OnlyRegularFilesAreRead) {
  std::ofstream(P("f")) << "data";
  EXPECT_EQ(ReadRegularFile(P("f"), 100, "input"), "data");
  EXPECT_THAT([&] { ReadRegularFile(P("f"), 3, "input"); }, ::testing::ThrowsMessage<Error>(HasSubstr("larger than")));
  ASSERT_EQ(mkfifo(P("fifo").c_str(), 0644), 0);
  EXPECT_THAT([&] { ReadRegularFile(P("fifo"), 100, "input"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("the input must be a regular file, and this is a FIFO")));
  EXPECT_THAT([&] { ReadRegularFile("/dev/zero", 100, "input"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("a character device")));
  EXPECT_THAT([&] { ReadRegularFile(root_.string(), 100, "input"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("a directory")));
}

TEST_F(FileIo, AtomicFileWritesDevicesInPlaceAndFollowsSymlinks) {
  // Through a link of our own: were the device renamed over instead of
  // written, only the link would be replaced, never /dev/full itself.
  fs::create_symlink("/dev/full", P("full"));
  EXPECT_THAT([&] { WriteFileAtomic(P("full"), "x"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("No space left on device")));
  EXPECT_TRUE(fs::is_symlink(P("full")));
  EXPECT_TRUE(fs::is_character_file("/dev/full"));
  std::ofstream(P("target")) << "old";
  fs::create_symlink("target", P("link"));
  WriteFileAtomic(P("link"), "new");
  EXPECT_TRUE(fs::is_symlink(P("link")));
  EXPECT_EQ(ReadFile(P("target")), "new");
}

}  // namespace
}  // namespace rg
