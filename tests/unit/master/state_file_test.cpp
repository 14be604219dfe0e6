// global.state_file: written aside then renamed, read back, and a failing
// write counted and shown by `show state-file`.

#include "master/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/util.h"

namespace weir {
namespace {

TEST(StateFile, WritesReadsBackAndCountsTheWrites) {
  std::string dir = test::make_temp_dir();
  std::string path = dir + "/state";
  StateFile f;
  EXPECT_EQ(StateFile::read(path), std::nullopt);  // a first start
  f.write(path, "app s1 maint\n");
  f.write(path, "app s1 ready\n");
  EXPECT_EQ(StateFile::read(path), "app s1 ready\n");
  struct stat st {};
  EXPECT_NE(::stat((path + ".tmp").c_str(), &st), 0);  // renamed into place
  EXPECT_EQ(f.describe(path),
            "path: " + path + "\nwrites: 2\nfailed: 0\nlast_error: -\nstate: ok\n");
  test::remove_tree(dir);
}

TEST(StateFile, AFailedWriteIsCountedUntilAWriteSucceedsAgain) {
  std::string dir = test::make_temp_dir();
  std::string path = dir + "/missing/state";
  StateFile f;
  f.write(path, "x");
  f.write(path, "x");
  EXPECT_EQ(f.describe(path), "path: " + path +
                                  "\nwrites: 0\nfailed: 2\nlast_error: No such file or "
                                  "directory\nstate: failing\n");
  ASSERT_EQ(::mkdir((dir + "/missing").c_str(), 0700), 0);
  f.write(path, "y");
  EXPECT_EQ(StateFile::read(path), "y");
  EXPECT_EQ(f.describe(path), "path: " + path +
                                  "\nwrites: 1\nfailed: 2\nlast_error: No such file or "
                                  "directory\nstate: ok\n");
  EXPECT_EQ(f.describe(""), "No state file (global.state_file is not set).");
  test::remove_tree(dir);
}

}  // namespace
}  // namespace weir
