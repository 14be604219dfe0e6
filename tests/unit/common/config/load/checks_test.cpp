// check: and agent: of backends and servers (load/checks.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigChecks, HealthChecksFromTheBackendAndPerServer) {
  const LoadResult ok = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: http, path: /health, host: app.internal, inter: 2s, fastinter: 500ms,
            downinter: 5s, timeout: 1s, rise: 3, fall: 2, expect: {status: 200-299}}
    servers:
      s1: "127.0.0.1:9001"
      s2: {address: "127.0.0.1:9002", check: {port: 9102, fall: 5}}
      s3: {address: "127.0.0.1:9003", check: false}
  plain:
    servers: {t1: {address: "127.0.0.1:9004", check: true}, t2: "127.0.0.1:9005"}
)");
  ASSERT_TRUE(ok.errors.empty()) << describe(ok.errors);
  const auto& app = ok.config->backends[0].servers;
  EXPECT_TRUE(app[0].check.enabled);
  EXPECT_EQ(app[0].check.type, HealthCheckConfig::Type::kHttp);
  EXPECT_EQ(app[0].check.path, "/health");
  EXPECT_EQ(app[0].check.host, "app.internal");
  EXPECT_EQ(app[0].check.inter, 2000);
  EXPECT_EQ(app[0].check.fastinter, 500);
  EXPECT_EQ(app[0].check.downinter, 5000);
  EXPECT_EQ(app[0].check.timeout, 1000);
  EXPECT_EQ(app[0].check.rise, 3);
  EXPECT_EQ(app[0].check.fall, 2);
  EXPECT_EQ(app[0].check.status_min, 200);
  EXPECT_EQ(app[0].check.status_max, 299);
  EXPECT_EQ(app[1].check.port, 9102);  // the server's own settings over the backend's
  EXPECT_EQ(app[1].check.fall, 5);
  EXPECT_EQ(app[1].check.path, "/health");
  EXPECT_FALSE(app[2].check.enabled);
  const auto& plain = ok.config->backends[1].servers;
  EXPECT_TRUE(plain[0].check.enabled);
  EXPECT_EQ(plain[0].check.type, HealthCheckConfig::Type::kTcp);
  EXPECT_FALSE(plain[1].check.enabled);

  const LoadResult bad = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: udp, path: health, inter: 1ms, rise: 0, expect: {status: 700}, intervall: 2s}
    servers: {s1: "127.0.0.1:9001"}
)");
  std::string all;
  for (const ConfigError& e : bad.errors) all += e.to_string() + "\n";
  EXPECT_NE(all.find("unknown type 'udp' (expected tcp or http)"), std::string::npos) << all;
  EXPECT_NE(all.find("path 'health' must start with '/'"), std::string::npos) << all;
  EXPECT_NE(all.find("inter must be between 10ms and 1h"), std::string::npos) << all;
  EXPECT_NE(all.find("rise"), std::string::npos) << all;
  EXPECT_NE(all.find("expect: status '700' is not a status"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown key 'intervall'"), std::string::npos) << all;
}

TEST(ConfigChecks, AgentsTcpSequencesAndPassiveChecks) {
  const LoadResult ok = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: tcp, address: 10.0.0.9, port: 6379, observe: layer4, error_limit: 5,
            on_error: sudden_death, send: "PING\r\n", expect: {string: "+PONG"}}
    agent: {port: 9999, inter: 500ms, send: "status\n"}
    servers:
      s1: "127.0.0.1:9001"
      s2: {address: "127.0.0.1:9002", agent: {port: 9998, address: "::1"},
           check: {sequence: [{send: "A"}, {expect: {regex: "^B+"}}, {send: "C"}]}}
)");
  ASSERT_TRUE(ok.errors.empty()) << describe(ok.errors);
  const auto& be = ok.config->backends[0];
  const auto& s1 = be.servers[0];
  EXPECT_EQ(s1.check.addr->to_string(), "10.0.0.9:1");  // the port comes from port: or the server
  EXPECT_EQ(s1.check.port, 6379);
  EXPECT_EQ(s1.check.observe, HealthCheckConfig::Observe::kLayer4);
  EXPECT_EQ(s1.check.error_limit, 5);
  EXPECT_EQ(s1.check.on_error, HealthCheckConfig::OnError::kSuddenDeath);
  ASSERT_EQ(s1.check.tcp_steps.size(), 2u);
  EXPECT_EQ(s1.check.tcp_steps[0].kind, HealthCheckConfig::TcpStep::Kind::kSend);
  EXPECT_EQ(s1.check.tcp_steps[0].data, "PING\r\n");
  EXPECT_EQ(s1.check.tcp_steps[1].kind, HealthCheckConfig::TcpStep::Kind::kExpectString);
  EXPECT_TRUE(s1.agent.enabled);
  EXPECT_EQ(s1.agent.port, 9999);
  EXPECT_EQ(s1.agent.inter, 500);
  EXPECT_EQ(s1.agent.send, "status\n");
  const auto& s2 = be.servers[1];
  ASSERT_EQ(s2.check.tcp_steps.size(), 3u);
  EXPECT_EQ(s2.check.tcp_steps[1].kind, HealthCheckConfig::TcpStep::Kind::kExpectRegex);
  EXPECT_EQ(s2.agent.port, 9998);
  EXPECT_EQ(s2.agent.addr->to_string(), "[::1]:1");
  EXPECT_EQ(s2.agent.inter, 500);  // the backend's, under the server's own keys
  EXPECT_TRUE(be.default_agent.enabled);
  EXPECT_EQ(be.default_check.tcp_steps.size(), 2u);  // what `add server` copies
}

TEST(ConfigChecks, BadAgentsSequencesAndPassiveChecksAreErrors) {
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    agent: {inter: 1s}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 12, "needs a port"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: tcp, sequence: [{send: "x", expect: {string: y}}]}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 35, "exactly one of send or expect"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: tcp, expect: {regex: "(unclosed"}}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 40, "invalid regular expression"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: http, send: "x", expect: {string: "y"}}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 44, "belong to tcp checks"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: http, on_error: mark_down, observe: layer9}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 55, "unknown layer 'layer9'"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: http, on_error: explode, observe: layer7}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 35, "unknown action 'explode'"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: http, error_limit: 3}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 38, "needs observe"));
  EXPECT_TRUE(has_error(load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    check: {type: tcp, address: "10.0.0.1:80"}
    servers: {s1: "127.0.0.1:9001"}
)"),
                        5, 33, "must not carry a port"));
}

}  // namespace
}  // namespace weir
