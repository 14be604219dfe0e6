#pragma once
// weir started from its own copy of a binary, as a package installs it, so
// that a test can replace that file the way a package upgrade does (the new
// file written aside, then renamed over the old one: the running processes
// keep the old inode) and reload. The master CLI listens on `sock`.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "tests/support/launcher.h"
#include "tests/support/util.h"

namespace weir::test {

struct InstalledWeir {
  std::string dir = make_temp_dir();
  std::string bin = dir + "/weir";
  std::string sock = dir + "/master.sock";
  std::unique_ptr<WeirProcess> weir;

  explicit InstalledWeir(const std::string& binary) {
    ignore_sigpipe();
    write_file(bin, read_file(binary));
    ::chmod(bin.c_str(), 0755);
  }
  ~InstalledWeir() {
    weir.reset();
    remove_tree(dir);
  }
  // Starts `bin -f <yaml> -S sock`; false (with the test failed) when it does not start.
  bool start(const std::string& yaml) {
    ::setenv("WEIR_BINARY", bin.c_str(), 1);
    WeirOptions opts;
    opts.extra_args = {"-S", sock};
    weir = WeirProcess::start(yaml, opts);
    ::unsetenv("WEIR_BINARY");
    return weir != nullptr;
  }
  // What a package upgrade does to `bin`: `binary` written aside, then renamed over it.
  void unpack(const std::string& binary) {
    const std::string aside = bin + ".dpkg-new";
    write_file(aside, read_file(binary));
    ASSERT_EQ(::chmod(aside.c_str(), 0755), 0);
    ASSERT_EQ(::rename(aside.c_str(), bin.c_str()), 0);
  }
  std::string cli(const std::string& command) const { return unix_command(sock, command); }
};

}  // namespace weir::test
