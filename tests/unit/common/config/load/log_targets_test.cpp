// global.log: targets, formats, syslog (load/log_targets.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigLogTargets, LogTargetsAndFormats) {
  const LoadResult result = load(R"(global:
  log:
    - stdout
    - relative/access.log
    - {target: /var/log/weir.log, format: xml}
    - {format: json}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 3U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 4, 7,
                        "global: log: invalid target 'relative/access.log' (expected stdout, "
                        "stderr, syslog or an absolute file path)"));
  EXPECT_TRUE(has_error(result, 5, 43,
                        "global: log: unknown format 'xml' (expected text, http, tcp, json or a "
                        "format string"));
  EXPECT_TRUE(has_error(result, 6, 7, "global: log: entry has no target"));
}

TEST(ConfigLogTargets, SingleLogAndBindNeedNoList) {
  const LoadResult result = load(R"(global: {log: stderr}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.config->global.logs.size(), 1U);
  EXPECT_EQ(result.config->global.logs[0].target, LogTarget::kStderr);
  EXPECT_EQ(result.config->frontends.at(0).binds.size(), 1U);
}

TEST(ConfigLogTargets, SyslogTargetsFormatsAndTheirErrors) {
  LoadResult ok = load_config_text(R"(global:
  log:
    - {target: syslog}
    - {target: syslog, address: "127.0.0.1:5514", facility: local3, tag: edge, format: json}
    - {target: syslog, address: "[::1]", framing: rfc3164}
    - {target: stdout, format: "%ci %ST %hr{Host}"}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                   "test.yaml");
  ASSERT_TRUE(ok.errors.empty()) << ok.errors[0].to_string();
  const auto& logs = ok.config->global.logs;
  ASSERT_EQ(logs.size(), 4u);
  EXPECT_EQ(logs[0].target, LogTarget::kSyslog);
  EXPECT_EQ(logs[0].path, "/dev/log");
  EXPECT_EQ(logs[0].framing, SyslogFraming::kRfc3164);
  EXPECT_EQ(logs[0].facility, 16);
  EXPECT_EQ(logs[1].syslog_addr.to_string(), "127.0.0.1:5514");
  EXPECT_EQ(logs[1].framing, SyslogFraming::kRfc5424);
  EXPECT_EQ(logs[1].facility, 19);
  EXPECT_EQ(logs[1].tag, "edge");
  EXPECT_EQ(logs[1].format, LogFormat::kJson);
  // An IPv6 address in brackets without a port gets syslog's port (doc/configuration.md).
  EXPECT_EQ(logs[2].syslog_addr.to_string(), "[::1]:514");
  EXPECT_EQ(logs[2].framing, SyslogFraming::kRfc3164);
  EXPECT_EQ(logs[3].format, LogFormat::kCustom);
  EXPECT_EQ(logs[3].custom, "%ci %ST %hr{Host}");

  LoadResult bad = load_config_text(R"(global:
  log:
    - {target: stdout, format: "%ci %bogus"}
    - {target: stderr, format: '%ci %nope'}
    - {target: syslog, facility: local9}
    - {target: syslog, framing: rfc9999, tag: "a b"}
    - {target: stdout, address: "127.0.0.1:514"}
    - {target: syslog, address: "::1"}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                    "test.yaml");
  std::string all;
  for (const ConfigError& e : bad.errors) all += e.to_string() + "\n";
  // The column points inside the string, at the bad variable (after the quote).
  EXPECT_NE(all.find("test.yaml:3:37: global: log: format: unknown log variable '%bogus'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("test.yaml:4:37: global: log: format: unknown log variable '%nope'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("unknown syslog facility 'local9'"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown framing 'rfc9999'"), std::string::npos) << all;
  EXPECT_NE(all.find("tag 'a b' must be 1 to 32 characters"), std::string::npos) << all;
  EXPECT_NE(all.find("test.yaml:7:33: global: log: address only applies to target: syslog"),
            std::string::npos)
      << all;  // Without brackets, an IPv6 address cannot be told from host:port.
  EXPECT_NE(all.find("test.yaml:8:33: global: log: syslog address '::1': IPv6 addresses must be "
                     "written in brackets"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace weir
