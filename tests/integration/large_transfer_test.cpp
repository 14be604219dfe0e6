// 20 MiB uploads and downloads through http and tcp modes, checked by SHA-256,
// with curl as the client.

#include <gtest/gtest.h>

#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

constexpr size_t k20MiB = 20u << 20;

class LargeTransfer : public ::testing::TestWithParam<std::string> {};

TEST_P(LargeTransfer, DownloadAndUploadKeepEveryByte) {
  ignore_sigpipe();
  OriginServer a("a");
  ProxySpec spec;
  spec.mode = GetParam();
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  std::string base = "http://127.0.0.1:" + std::to_string(spec.port);

  std::string down = weir->dir() + "/down.bin";
  CommandResult r = run_command(
      {"curl", "-sS", "-o", down, "-w", "%{http_code}", base + "/?size=" + std::to_string(k20MiB)},
      120000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  std::string got = read_file(down);
  EXPECT_EQ(got.size(), k20MiB);
  EXPECT_EQ(sha256_hex(got), pattern_sha256(k20MiB));

  std::string up = weir->dir() + "/up.bin";
  write_file(up, pattern_bytes(0, k20MiB));
  r = run_command({"curl", "-sS", "-D", "-", "-o", "/dev/null", "--data-binary", "@" + up, "-H",
                   "Content-Type: application/octet-stream", base + "/upload"},
                  120000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("X-Body-Size: " + std::to_string(k20MiB)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("X-Body-Sha256: " + pattern_sha256(k20MiB)), std::string::npos) << r.out;

  // Chunked download of the same size.
  r = run_command({"curl", "-sS", "-o", down, "-w", "%{http_code}",
                   base + "/?chunked=1&chunk=65536&size=" + std::to_string(k20MiB)},
                  120000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_hex(read_file(down)), pattern_sha256(k20MiB));
}

INSTANTIATE_TEST_SUITE_P(Modes, LargeTransfer, ::testing::Values("http", "tcp"));

}  // namespace
}  // namespace weir::test
