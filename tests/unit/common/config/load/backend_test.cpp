// backends and balance (load/backend.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigBackend, BadModeAndBalance) {
  const LoadResult result = load(R"(defaults:
  mode: udp
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    balance: leastconns
    servers: {s1: "127.0.0.1:9001"}
  other:
    balance: {algorithm: hdr}
  third:
    balance: {algorithm: random, depth: 2}
  fourth:
    mode: tcp
    balance: url_param(id)
  fifth:
    balance: {algorithm: roundrobin, hash_type: consistent}
  sixth:
    balance: leastconn(x)
)");
  EXPECT_TRUE(has_error(result, 2, 9, "defaults: mode: unknown mode 'udp' (expected http or tcp)"));
  EXPECT_TRUE(has_error(result, 7, 14,
                        "backend 'app': unknown balance algorithm 'leastconns' (known: "
                        "first, hdr, leastconn, random, roundrobin, source, static-rr, uri, "
                        "url_param)"));
  EXPECT_TRUE(has_error(result, 10, 26,
                        "backend 'other': balance hdr needs a header name: hdr(NAME) or "
                        "{algorithm: hdr, name: NAME}"));
  EXPECT_TRUE(has_error(result, 12, 41, "backend 'third': balance: depth only applies to uri"));
  EXPECT_TRUE(has_error(result, 15, 14,
                        "backend 'fourth': balance url_param needs http mode (this "
                        "backend is tcp)"));
  EXPECT_TRUE(has_error(result, 17, 49,
                        "backend 'fifth': balance: hash_type only applies to hdr, source, uri, "
                        "url_param"));
  EXPECT_TRUE(has_error(result, 19, 14, "backend 'sixth': balance leastconn takes no argument"));
  EXPECT_EQ(result.errors.size(), 7U) << describe(result.errors);
}

TEST(ConfigBackend, EveryBalanceAlgorithmAndServerLimit) {
  const LoadResult result = load(R"y(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: a}
backends:
  a: {balance: static-rr, servers: {s1: "127.0.0.1:9001"}}
  b: {balance: leastconn, servers: {s1: "127.0.0.1:9001"}}
  c: {balance: first, servers: {s1: "127.0.0.1:9001"}}
  d: {balance: {algorithm: source, hash_type: consistent}, servers: {s1: "127.0.0.1:9001"}}
  e: {balance: {algorithm: uri, depth: 2, whole: true}, servers: {s1: "127.0.0.1:9001"}}
  f: {balance: url_param(userid), servers: {s1: "127.0.0.1:9001"}}
  g: {balance: "hdr(X-Tenant)", servers: {s1: "127.0.0.1:9001"}}
  h:
    balance: {algorithm: random, draws: 3}
    redispatch: false
    all_backups: true
    fullconn: 200
    servers:
      s1: {address: "127.0.0.1:9001", maxconn: 20, maxqueue: 50, minconn: 5, slowstart: 30s}
      s2: {address: "127.0.0.1:9002", backup: true}
)y");
  ASSERT_TRUE(result.errors.empty()) << describe(result.errors);
  const auto& bs = result.config->backends;
  ASSERT_EQ(bs.size(), 8U);
  EXPECT_EQ(bs[0].balance.algorithm, "static-rr");
  EXPECT_EQ(bs[1].balance.algorithm, "leastconn");
  EXPECT_EQ(bs[2].balance.algorithm, "first");
  EXPECT_EQ(bs[3].balance.algorithm, "source");
  EXPECT_EQ(bs[3].balance.hash_type, "consistent");
  EXPECT_EQ(bs[4].balance.algorithm, "uri");
  EXPECT_EQ(bs[4].balance.uri_depth, 2);
  EXPECT_TRUE(bs[4].balance.uri_whole);
  EXPECT_EQ(bs[4].balance.hash_type, "map_based");
  EXPECT_EQ(bs[5].balance.algorithm, "url_param");
  EXPECT_EQ(bs[5].balance.name, "userid");
  EXPECT_EQ(bs[6].balance.algorithm, "hdr");
  EXPECT_EQ(bs[6].balance.name, "x-tenant");
  const BackendConfig& h = bs[7];
  EXPECT_EQ(h.balance.algorithm, "random");
  EXPECT_EQ(h.balance.draws, 3);
  EXPECT_FALSE(h.redispatch);
  EXPECT_TRUE(h.all_backups);
  EXPECT_EQ(h.fullconn, 200U);
  EXPECT_EQ(h.servers[0].maxconn, 20U);
  EXPECT_EQ(h.servers[0].maxqueue, 50U);
  EXPECT_EQ(h.servers[0].minconn, 5U);
  EXPECT_EQ(h.servers[0].slowstart, 30000);
  EXPECT_FALSE(h.servers[0].backup);
  EXPECT_TRUE(h.servers[1].backup);
  EXPECT_TRUE(bs[0].redispatch);  // the default
}

TEST(ConfigBackend, DuplicateBackendAndServer) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    servers:
      s1: "127.0.0.1:9001"
      s1: "127.0.0.1:9002"
  app:
    servers: {}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 7, 7, "duplicate server 's1' in backend 'app' (first defined at line 6)"));
  EXPECT_TRUE(has_error(result, 8, 3, "duplicate backend 'app' (first defined at line 4)"));
}

TEST(ConfigBackend, BackendWithoutServersIsAWarning) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    servers: {}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.warnings.size(), 1U) << describe(result.warnings);
  EXPECT_EQ(result.warnings[0].to_string(),
            "test.yaml:4:3: backend 'app' has no servers; requests will get 503");
}

TEST(ConfigBackend, HttpReuseComesFromDefaultsAndEachBackendMayChangeIt) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->backends.at(0).http_reuse, HttpReuse::kAlways);

  result = load(R"(defaults:
  http_reuse: safe
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: a}
backends:
  a: {servers: {s1: "127.0.0.1:9001"}}
  b: {http_reuse: never, servers: {s1: "127.0.0.1:9001"}}
  c: {http_reuse: always, servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  const auto& bs = result.config->backends;
  ASSERT_EQ(bs.size(), 3U);
  EXPECT_EQ(bs[0].http_reuse, HttpReuse::kSafe);
  EXPECT_EQ(bs[1].http_reuse, HttpReuse::kNever);
  EXPECT_EQ(bs[2].http_reuse, HttpReuse::kAlways);
}

TEST(ConfigBackend, HttpReuseBadValuesAreErrorsAndTcpModeIsAWarning) {
  LoadResult result = load(R"(defaults:
  http_reuse: Never
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    http_reuse: aggressive
    servers: {s1: "127.0.0.1:9001"}
  other:
    http_reuse: [safe]
  third:
    http_reuse: true
)");
  EXPECT_TRUE(has_error(result, 2, 15,
                        "defaults: http_reuse: unknown mode 'Never' (expected never, safe or "
                        "always)"));
  EXPECT_TRUE(has_error(result, 7, 17,
                        "backend 'app': http_reuse: unknown mode 'aggressive' (expected never, "
                        "safe or always)"));
  EXPECT_TRUE(has_error(result, 10, 17,
                        "backend 'other': http_reuse: expected never, safe or always (got a "
                        "list)"));
  EXPECT_TRUE(has_error(result, 12, 17,
                        "backend 'third': http_reuse: unknown mode 'true' (expected never, safe "
                        "or always)"));
  EXPECT_EQ(result.errors.size(), 4U) << describe(result.errors);

  // tcp connections are never reused: the key means nothing there (HAProxy
  // warns too). From defaults it says nothing: defaults serve every mode.
  result = load(R"(defaults:
  http_reuse: never
frontends:
  db: {bind: "127.0.0.1:5432", mode: tcp, default_backend: db}
backends:
  db:
    mode: tcp
    http_reuse: safe
    servers: {s1: "127.0.0.1:15432"}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.warnings.size(), 1U) << describe(result.warnings);
  EXPECT_EQ(result.warnings[0].to_string(),
            "test.yaml:8:17: backend 'db': http_reuse has no effect in tcp mode");
}

}  // namespace
}  // namespace weir
