#include <gtest/gtest.h>
#include <netdb.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "common/config/config_loader_detail.h"

namespace weir {
namespace {

LoadResult load(std::string_view text) {
  return load_config_text(text, "test.yaml");
}

std::string describe(const std::vector<ConfigError>& messages) {
  std::string out;
  for (const ConfigError& e : messages) out += "\n  " + e.to_string();
  return out.empty() ? " (none)" : out;
}

// Some error is at line:column and its message contains `text`.
testing::AssertionResult has_error(const LoadResult& result, int line, int column,
                                   std::string_view text) {
  if (result.config) return testing::AssertionFailure() << "the configuration loaded";
  for (const ConfigError& e : result.errors) {
    if (e.line == line && e.column == column && e.message.find(text) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure() << "no error at " << line << ":" << column << " containing '"
                                     << text << "'; errors:" << describe(result.errors);
}

// The only error is at line:column and its message contains `text`.
testing::AssertionResult only_error(const LoadResult& result, int line, int column,
                                    std::string_view text) {
  if (result.errors.size() != 1) {
    return testing::AssertionFailure()
           << "expected exactly one error, got:" << describe(result.errors);
  }
  return has_error(result, line, column, text);
}

testing::AssertionResult loads(const LoadResult& result) {
  if (result.config && result.errors.empty()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "errors:" << describe(result.errors);
}

constexpr std::string_view kMinimal = R"(frontends:
  web:
    bind: ["127.0.0.1:8080"]
    default_backend: app
backends:
  app:
    servers:
      s1: "127.0.0.1:9001"
)";

TEST(ConfigLoader, MinimalFileGetsEveryDefault) {
  const LoadResult result = load(kMinimal);
  ASSERT_TRUE(loads(result));
  EXPECT_TRUE(result.warnings.empty()) << describe(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.source_name, "test.yaml");

  EXPECT_EQ(config.global.threads, 1);
  EXPECT_EQ(config.global.maxconn, 0U);  // not set: derived from the open-file limit
  EXPECT_EQ(config.global.user, "");
  EXPECT_EQ(config.global.group, "");
  EXPECT_EQ(config.global.pidfile, "");
  EXPECT_TRUE(config.global.logs.empty());
  EXPECT_EQ(config.global.bufsize, 16384U);
  EXPECT_EQ(config.global.splice_threshold, 65536U);
  EXPECT_EQ(config.global.hard_stop_after, 900000);

  ASSERT_EQ(config.frontends.size(), 1U);
  const FrontendConfig& web = config.frontends[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.mode, Mode::kHttp);
  EXPECT_EQ(web.maxconn, 0U);
  EXPECT_EQ(web.default_backend, "app");
  EXPECT_FALSE(web.forwardfor);
  EXPECT_TRUE(web.log);
  EXPECT_EQ(web.mark.line, 2);
  EXPECT_EQ(web.mark.column, 3);
  const Timeouts builtin;
  EXPECT_EQ(web.timeouts.client, builtin.client);
  EXPECT_EQ(web.timeouts.http_request, builtin.http_request);
  EXPECT_EQ(web.timeouts.http_keep_alive, builtin.http_keep_alive);
  ASSERT_EQ(web.binds.size(), 1U);
  EXPECT_EQ(web.binds[0].address_text, "127.0.0.1:8080");
  EXPECT_EQ(web.binds[0].addr.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(web.binds[0].backlog, 1024);
  EXPECT_TRUE(web.binds[0].v6only);
  EXPECT_EQ(web.binds[0].mark.line, 3);
  EXPECT_EQ(web.binds[0].mark.column, 12);

  ASSERT_EQ(config.backends.size(), 1U);
  const BackendConfig& app = config.backends[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.mode, Mode::kHttp);
  EXPECT_EQ(app.balance.algorithm, "roundrobin");
  EXPECT_EQ(app.retries, 3);
  EXPECT_EQ(app.timeouts.connect, builtin.connect);
  EXPECT_EQ(app.timeouts.server, builtin.server);
  EXPECT_EQ(app.timeouts.queue, builtin.queue);
  EXPECT_EQ(app.timeouts.tunnel, builtin.tunnel);
  ASSERT_EQ(app.servers.size(), 1U);
  EXPECT_EQ(app.servers[0].name, "s1");
  EXPECT_EQ(app.servers[0].address_text, "127.0.0.1:9001");
  EXPECT_EQ(app.servers[0].addr.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(app.servers[0].weight, 1U);
  EXPECT_EQ(app.servers[0].mark.line, 8);
  EXPECT_EQ(app.servers[0].mark.column, 7);
}

TEST(ConfigLoader, FullFileSetsEveryKey) {
  const LoadResult result = load(R"(global:
  threads: 4
  maxconn: 5000
  user: root
  group: root
  pidfile: /run/weir.pid
  log:
    - stdout
    - {target: stderr, format: json}
    - /var/log/weir/access.log
  tune: {bufsize: 32k, splice_threshold: 1m}
  timeouts: {hard_stop_after: 2m}
defaults:
  mode: http
  timeouts: {connect: 1s, client: 2s, server: 3s, queue: 4s, http_request: 5s, http_keep_alive: 6s, tunnel: 7s}
  retries: 5
  forwardfor: true
frontends:
  web:
    bind: ["0.0.0.0:8080", {address: "[::]:8080", backlog: 511, v6only: false}]
    mode: http
    maxconn: 100
    default_backend: app
    forwardfor: false
    log: false
    timeouts: {client: 20s, http_request: 500ms, http_keep_alive: 0}
backends:
  app:
    mode: http
    balance: {algorithm: roundrobin}
    retries: 0
    timeouts: {connect: 250ms, server: 1m, queue: 0, tunnel: 2h}
    servers:
      s1: {address: "127.0.0.1:9001", weight: 10}
      s2: {address: "[::1]:9002", weight: 0}
      s3: "127.0.0.1:9003"
)");
  ASSERT_TRUE(loads(result));
  EXPECT_TRUE(result.warnings.empty()) << describe(result.warnings);
  const Config& config = *result.config;

  EXPECT_EQ(config.global.threads, 4);
  EXPECT_EQ(config.global.maxconn, 5000U);
  EXPECT_EQ(config.global.user, "root");
  EXPECT_EQ(config.global.group, "root");
  EXPECT_EQ(config.global.pidfile, "/run/weir.pid");
  ASSERT_EQ(config.global.logs.size(), 3U);
  EXPECT_EQ(config.global.logs[0].target, LogTarget::kStdout);
  EXPECT_EQ(config.global.logs[0].format, LogFormat::kText);
  EXPECT_EQ(config.global.logs[0].mark.line, 8);
  EXPECT_EQ(config.global.logs[1].target, LogTarget::kStderr);
  EXPECT_EQ(config.global.logs[1].format, LogFormat::kJson);
  EXPECT_EQ(config.global.logs[2].target, LogTarget::kFile);
  EXPECT_EQ(config.global.logs[2].path, "/var/log/weir/access.log");
  EXPECT_EQ(config.global.bufsize, 32768U);
  EXPECT_EQ(config.global.splice_threshold, 1048576U);
  EXPECT_EQ(config.global.hard_stop_after, 120000);

  const FrontendConfig& web = config.frontends.at(0);
  EXPECT_EQ(web.mode, Mode::kHttp);
  EXPECT_EQ(web.maxconn, 100U);
  EXPECT_FALSE(web.forwardfor);
  EXPECT_FALSE(web.log);
  EXPECT_EQ(web.timeouts.client, 20000);
  EXPECT_EQ(web.timeouts.http_request, 500);
  EXPECT_EQ(web.timeouts.http_keep_alive, 0);
  ASSERT_EQ(web.binds.size(), 2U);
  EXPECT_EQ(web.binds[0].key(), "tcp:0.0.0.0:8080");
  EXPECT_EQ(web.binds[1].key(), "tcp:[::]:8080");
  EXPECT_EQ(web.binds[1].backlog, 511);
  EXPECT_FALSE(web.binds[1].v6only);
  EXPECT_EQ(web.binds[1].mark.line, 20);
  EXPECT_EQ(web.binds[1].mark.column, 38);

  const BackendConfig& app = config.backends.at(0);
  EXPECT_EQ(app.balance.algorithm, "roundrobin");
  EXPECT_EQ(app.retries, 0);
  EXPECT_EQ(app.timeouts.connect, 250);
  EXPECT_EQ(app.timeouts.server, 60000);
  EXPECT_EQ(app.timeouts.queue, 0);
  EXPECT_EQ(app.timeouts.tunnel, 7200000);
  ASSERT_EQ(app.servers.size(), 3U);
  EXPECT_EQ(app.servers[0].weight, 10U);
  EXPECT_EQ(app.servers[1].addr.to_string(), "[::1]:9002");
  EXPECT_EQ(app.servers[1].weight, 0U);
  EXPECT_EQ(app.servers[2].name, "s3");
}

TEST(ConfigLoader, PackagedExampleLoads) {
  // (Not __FILE__: a compiler cache may make it relative to the build.)
  const std::string path = std::string(WEIR_SOURCE_DIR) + "/etc/weir.yaml";
  const LoadResult result = load_config_file(path);
  ASSERT_TRUE(loads(result));
  EXPECT_TRUE(result.warnings.empty()) << describe(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.global.threads, 2);
  EXPECT_EQ(config.global.user, "");
  ASSERT_EQ(config.global.logs.size(), 1U);
  EXPECT_EQ(config.global.logs[0].target, LogTarget::kStdout);
  ASSERT_EQ(config.frontends.size(), 1U);
  EXPECT_EQ(config.frontends[0].name, "web");
  ASSERT_EQ(config.frontends[0].binds.size(), 2U);
  EXPECT_EQ(config.frontends[0].binds[0].key(), "tcp:0.0.0.0:8080");
  EXPECT_EQ(config.frontends[0].binds[1].key(), "tcp:[::]:8080");
  const BackendConfig* app = config.find_backend(config.frontends[0].default_backend);
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->name, "app");
  ASSERT_EQ(app->servers.size(), 2U);
  EXPECT_EQ(app->servers[0].addr.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(app->servers[1].addr.to_string(), "127.0.0.1:9002");
}

TEST(ConfigLoader, SectionsInheritFromDefaultsAndOverrideThem) {
  // defaults: comes last in the file on purpose: it applies wherever it is written.
  const LoadResult result = load(R"(frontends:
  plain:
    bind: ["127.0.0.1:8080"]
    default_backend: plain
  tuned:
    bind: ["127.0.0.1:8081"]
    default_backend: tuned
    forwardfor: false
    timeouts: {client: 1m}
backends:
  plain:
    servers: {s1: "127.0.0.1:9001"}
  tuned:
    retries: 1
    timeouts: {connect: 100ms}
    servers: {s1: "127.0.0.1:9001"}
defaults:
  mode: http
  retries: 7
  forwardfor: true
  timeouts: {connect: 2s, client: 3s, server: 4s, tunnel: 5m}
)");
  ASSERT_TRUE(loads(result));
  const Config& config = *result.config;
  const FrontendConfig& plain = config.frontends.at(0);
  EXPECT_TRUE(plain.forwardfor);
  EXPECT_EQ(plain.timeouts.client, 3000);
  EXPECT_EQ(plain.timeouts.http_request, Timeouts{}.http_request);  // built-in default
  const FrontendConfig& tuned = config.frontends.at(1);
  EXPECT_FALSE(tuned.forwardfor);
  EXPECT_EQ(tuned.timeouts.client, 60000);

  const BackendConfig* plain_be = config.find_backend("plain");
  ASSERT_NE(plain_be, nullptr);
  EXPECT_EQ(plain_be->retries, 7);
  EXPECT_EQ(plain_be->timeouts.connect, 2000);
  EXPECT_EQ(plain_be->timeouts.server, 4000);
  EXPECT_EQ(plain_be->timeouts.tunnel, 300000);
  EXPECT_EQ(plain_be->timeouts.queue, Timeouts{}.queue);
  const BackendConfig* tuned_be = config.find_backend("tuned");
  ASSERT_NE(tuned_be, nullptr);
  EXPECT_EQ(tuned_be->retries, 1);
  EXPECT_EQ(tuned_be->timeouts.connect, 100);
  EXPECT_EQ(tuned_be->timeouts.server, 4000);
}

TEST(ConfigLoader, DefaultModeAppliesToFrontendsAndBackends) {
  const LoadResult result = load(R"(defaults:
  mode: tcp
frontends:
  db:
    bind: ["127.0.0.1:5432"]
    default_backend: db
backends:
  db:
    servers: {s1: "127.0.0.1:15432"}
)");
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->frontends.at(0).mode, Mode::kTcp);
  EXPECT_EQ(result.config->backends.at(0).mode, Mode::kTcp);
}

TEST(ConfigLoader, EnvironmentVariablesAreExpandedInValues) {
  setenv("WEIR_TEST_PORT", "9100", 1);
  setenv("WEIR_TEST_EMPTY", "", 1);
  unsetenv("WEIR_TEST_UNSET");
  const LoadResult result = load(R"(global:
  threads: ${WEIR_TEST_UNSET:-3}
  pidfile: "/run/$${not_expanded}"
  user: ${WEIR_TEST_EMPTY:-}
frontends:
  web:
    bind: ["127.0.0.1:${WEIR_TEST_PORT}"]
    default_backend: app
backends:
  app:
    servers:
      s1: "127.0.0.1:${WEIR_TEST_EMPTY:-9001}"
)");
  ASSERT_TRUE(loads(result));
  const Config& config = *result.config;
  EXPECT_EQ(config.global.threads, 3);
  EXPECT_EQ(config.global.pidfile, "/run/${not_expanded}");
  EXPECT_EQ(config.global.user, "");
  EXPECT_EQ(config.frontends.at(0).binds.at(0).address_text, "127.0.0.1:9100");
  EXPECT_EQ(config.frontends.at(0).binds.at(0).addr.port(), 9100);
  EXPECT_EQ(config.backends.at(0).servers.at(0).addr.port(), 9001);
}

TEST(ConfigLoader, EnvironmentVariablesAreNotExpandedInKeys) {
  setenv("WEIR_TEST_NAME", "web", 1);
  const LoadResult result = load(R"(frontends:
  ${WEIR_TEST_NAME}:
    bind: ["127.0.0.1:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 2, 3, "invalid frontend name '${WEIR_TEST_NAME}'"));
}

TEST(ConfigLoader, UnsetEnvironmentVariableIsAnErrorAtItsScalar) {
  unsetenv("WEIR_TEST_UNSET");
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["127.0.0.1:8080", "127.0.0.1:${WEIR_TEST_UNSET}"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 3, 30,
                         "frontend 'web': bind: environment variable 'WEIR_TEST_UNSET' is not "
                         "set (write ${WEIR_TEST_UNSET:-default} to give a default)"));
}

TEST(ConfigLoader, UnterminatedEnvironmentReferenceIsAnError) {
  const LoadResult result = load(R"(global:
  pidfile: /run/${WEIR_PID
)");
  EXPECT_TRUE(has_error(result, 2, 12, "global: pidfile: unterminated '${' (expected '}')"));
}

TEST(ConfigLoader, MissingFileCannotBeOpened) {
  const LoadResult result = load_config_file("/nonexistent/weir.yaml");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_FALSE(result.config);
  EXPECT_EQ(result.errors[0].to_string(),
            "/nonexistent/weir.yaml: cannot open: No such file or directory");
}

TEST(ConfigLoader, EmptyFileHasNoFrontendsAtLineOneColumnOne) {
  for (const char* text : {"", "# nothing but a comment\n", "---\n"}) {
    const LoadResult result = load(text);
    ASSERT_EQ(result.errors.size(), 1U) << describe(result.errors);
    EXPECT_EQ(result.errors[0].to_string(),
              "test.yaml:1:1: no frontends defined (the file holds no configuration; see "
              "etc/weir.yaml)")
        << text;
  }
}

TEST(ConfigLoader, MissingFrontendsSectionIsAnError) {
  const LoadResult result = load(R"(backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 1, 1, "no frontends defined"));
}

TEST(ConfigLoader, EmptyFrontendsSectionIsAnError) {
  const LoadResult result = load("global: {threads: 2}\nfrontends: {}\n");
  EXPECT_TRUE(only_error(result, 2, 1, "no frontends defined"));
}

TEST(ConfigLoader, TopLevelMustBeAMap) {
  const LoadResult result = load("- frontends\n");
  EXPECT_TRUE(only_error(result, 1, 1,
                         "expected a map with global, defaults, frontends and "
                         "backends (got a list)"));
}

TEST(ConfigLoader, UnknownKeySuggestsTheClosestKnownKey) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["127.0.0.1:8080"]
    maxconns: 10
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(only_error(result, 4, 5, "unknown key"));
  EXPECT_EQ(result.errors[0].message,
            "unknown key 'maxconns' in frontend 'web'; did you mean 'maxconn'?");
}

TEST(ConfigLoader, UnknownKeyFarFromEveryKnownKeyHasNoSuggestion) {
  const LoadResult result = load(R"(global:
  colour: blue
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(only_error(result, 2, 3, "unknown key"));
  EXPECT_EQ(result.errors[0].message, "unknown key 'colour' in global");
}

TEST(ConfigLoader, UnknownTopLevelKey) {
  const LoadResult result = load(R"(fronends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
)");
  EXPECT_TRUE(has_error(result, 1, 1,
                        "unknown key 'fronends' at the top level; did you mean 'frontends'?"));
}

TEST(ConfigLoader, UnknownKeysInNestedBlocks) {
  const LoadResult result = load(R"(global:
  tune: {bufsize: 16k, buf_size: 1}
  log: [{target: stdout, fromat: json}]
frontends:
  web:
    bind: [{address: "127.0.0.1:8080", backlg: 5}]
    default_backend: app
backends:
  app:
    balance: {algorithm: roundrobin, dpeth: 2}
    servers: {s1: {address: "127.0.0.1:9001", wieght: 2}}
)");
  EXPECT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 24,
                        "unknown key 'buf_size' in global.tune; did you mean "
                        "'bufsize'?"));
  EXPECT_TRUE(has_error(result, 3, 26,
                        "unknown key 'fromat' in global.log entry; did you mean "
                        "'format'?"));
  EXPECT_TRUE(has_error(result, 6, 40, "unknown key 'backlg' in bind of frontend 'web'"));
  EXPECT_TRUE(has_error(result, 10, 38,
                        "unknown key 'dpeth' in balance of backend 'app'; did you mean 'depth'?"));
  EXPECT_TRUE(has_error(result, 11, 47, "unknown key 'wieght' in server 's1' of backend 'app'"));
}

TEST(ConfigLoader, UnknownTimeoutSuggestsAnAllowedOne) {
  const LoadResult result = load(R"(defaults:
  timeouts: {conect: 5s}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(
      only_error(result, 2, 14, "unknown timeout 'conect' in defaults; did you mean 'connect'?"));
}

TEST(ConfigLoader, TimeoutOutsideItsSectionIsAnError) {
  const LoadResult result = load(R"(global:
  timeouts: {client: 5s}
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    timeouts: {connect: 5s}
backends:
  app:
    servers: {s1: "127.0.0.1:9001"}
    timeouts: {http_request: 5s}
)");
  ASSERT_EQ(result.errors.size(), 3U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 14,
                        "timeout 'client' cannot be set in global (allowed here: "
                        "hard_stop_after)"));
  EXPECT_TRUE(has_error(result, 7, 16,
                        "timeout 'connect' cannot be set in frontend 'web' (allowed here: "
                        "client, http_request, http_keep_alive)"));
  EXPECT_TRUE(has_error(result, 11, 16,
                        "timeout 'http_request' cannot be set in backend 'app' (allowed here: "
                        "connect, server, queue, tunnel)"));
}

TEST(ConfigLoader, WrongTypes) {
  const LoadResult result = load(R"(global:
  threads: two
  tune: 16k
defaults:
  forwardfor: yes
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: [app]
    log: 1
backends:
  app:
    servers: ["127.0.0.1:9001"]
)");
  ASSERT_EQ(result.errors.size(), 6U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 12, "global: threads: expected an integer (got 'two')"));
  EXPECT_TRUE(has_error(result, 3, 9, "global.tune: expected a map (got '16k')"));
  EXPECT_TRUE(has_error(result, 5, 15, "defaults: forwardfor: expected true or false (got 'yes')"));
  EXPECT_TRUE(
      has_error(result, 9, 22, "frontend 'web': default_backend: expected a string (got a list)"));
  EXPECT_TRUE(has_error(result, 10, 10, "frontend 'web': log: expected true or false (got '1')"));
  EXPECT_TRUE(has_error(result, 13, 14, "servers of backend 'app': expected a map (got a list)"));
}

TEST(ConfigLoader, MissingValueIsReportedAtItsKey) {
  const LoadResult result = load(R"(global:
  threads:
  maxconn: 10
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 2, 3, "global: threads: missing value (expected an integer)"));
}

TEST(ConfigLoader, QuotedNumbersAndBooleansAreAccepted) {
  const LoadResult result = load(R"(global: {threads: "4"}
defaults: {forwardfor: "true", retries: '2'}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->global.threads, 4);
  EXPECT_TRUE(result.config->frontends.at(0).forwardfor);
  EXPECT_EQ(result.config->backends.at(0).retries, 2);
}

TEST(ConfigLoader, OutOfRangeNumbers) {
  const LoadResult result = load(R"(global:
  threads: 65
  maxconn: 0
defaults:
  retries: -1
frontends:
  web:
    bind: [{address: "127.0.0.1:8080", backlog: 65536}]
    default_backend: app
    maxconn: 99999999999999999999
backends:
  app:
    retries: 101
    servers: {s1: {address: "127.0.0.1:9001", weight: 257}}
)");
  ASSERT_EQ(result.errors.size(), 7U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 12, "global: threads: must be between 1 and 64 (got 65)"));
  EXPECT_TRUE(has_error(result, 3, 12, "global: maxconn: must be between 1 and 2147483647"));
  EXPECT_TRUE(has_error(result, 5, 12, "defaults: retries: must be between 0 and 100 (got -1)"));
  EXPECT_TRUE(has_error(result, 8, 49,
                        "frontend 'web': bind: backlog: must be between 1 and 65535 (got 65536)"));
  EXPECT_TRUE(has_error(result, 10, 14,
                        "frontend 'web': maxconn: must be between 1 and 2147483647 (got "
                        "99999999999999999999)"));
  EXPECT_TRUE(has_error(result, 13, 14, "backend 'app': retries: must be between 0 and 100"));
  EXPECT_TRUE(has_error(result, 14, 55,
                        "server 's1' of backend 'app': weight: must be between 0 and 256 (got "
                        "257)"));
}

TEST(ConfigLoader, BadDurationsAndSizes) {
  const LoadResult result = load(R"(global:
  tune: {bufsize: 16kb, splice_threshold: 1.5k}
  timeouts: {hard_stop_after: -1s}
defaults:
  timeouts: {connect: 1500us, client: ""}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 19,
                        "global.tune: bufsize: invalid size '16kb': unknown unit 'kb' (use k, m "
                        "or g)"));
  EXPECT_TRUE(has_error(result, 2, 43,
                        "global.tune: splice_threshold: invalid size '1.5k': fractions are not "
                        "supported"));
  EXPECT_TRUE(has_error(result, 3, 31,
                        "global.timeouts: hard_stop_after: invalid duration '-1s': negative "
                        "durations are not allowed"));
  EXPECT_TRUE(has_error(result, 5, 23,
                        "defaults.timeouts: connect: invalid duration '1500us': unknown unit "
                        "'us' (use ms, s, m, h or d)"));
  EXPECT_TRUE(
      has_error(result, 5, 39, "defaults.timeouts: client: invalid duration '': empty value"));
}

TEST(ConfigLoader, SizesAndDurationsOutsideTheirRange) {
  const LoadResult result = load(R"(global:
  tune: {bufsize: 512}
defaults:
  timeouts: {tunnel: 366d}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 2, 19, "global.tune: bufsize: must be between 1k and 1m (got 512)"));
  EXPECT_TRUE(
      has_error(result, 4, 22, "defaults.timeouts: tunnel: must be at most 365d (got 366d)"));
}

TEST(ConfigLoader, HeaderLimitAndConnect) {
  const LoadResult defaults = load(kMinimal);
  ASSERT_TRUE(loads(defaults));
  EXPECT_EQ(defaults.config->global.max_headers, 100U);
  EXPECT_FALSE(defaults.config->frontends.at(0).allow_connect);

  const LoadResult set = load(R"(global:
  tune: {max_headers: 250}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, allow_connect: true}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(set));
  EXPECT_EQ(set.config->global.max_headers, 250U);
  EXPECT_TRUE(set.config->frontends.at(0).allow_connect);

  const LoadResult bad = load(R"(global:
  tune:
    max_headers: 0
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, allow_connect: yes}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(bad.errors.size(), 2U) << describe(bad.errors);
  EXPECT_TRUE(
      has_error(bad, 3, 18, "global.tune: max_headers: must be between 1 and 1000 (got 0)"));
  EXPECT_TRUE(has_error(bad, 5, 70, "frontend 'web': allow_connect"));

  const LoadResult big = load(R"(global:
  tune: {max_headers: 1001}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(
      only_error(big, 2, 23, "global.tune: max_headers: must be between 1 and 1000 (got 1001)"));
  const LoadResult text = load(R"(global:
  tune: {max_headers: many}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(text, 2, 23, "global.tune: max_headers"));
}

TEST(ConfigLoader, BadModeAndBalance) {
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

TEST(ConfigLoader, EveryBalanceAlgorithmAndServerLimit) {
  const LoadResult result = load(R"y(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: a}
backends:
  a: {balance: static-rr, servers: {s1: "127.0.0.1:9001"}}
  b: {balance: leastconn, servers: {s1: "127.0.0.1:9001"}}
  c: {balance: first, servers: {s1: "127.0.0.1:9001"}}
  d: {balance: {algorithm: source, hash_type: consistent}, servers: {s1: "127.0.0.1:9001"}}
  e: {balance: {algorithm: uri, depth: 2, whole: true}, servers: {s1: "127.0.0.1:9001"}}
  f: {balance: {algorithm: url_param, name: userid, hash_type: maglev}, servers: {s1: "127.0.0.1:9001"}}
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
  EXPECT_EQ(bs[5].balance.hash_type, "maglev");
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

TEST(ConfigLoader, BadBindAndServerAddresses) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["127.0.0.1", "127.0.0.1:http", "::1:80"]
    default_backend: app
backends:
  app:
    servers:
      s1: "10.0.0.1"
      s2: {address: "10.0.0.1:70000"}
)");
  ASSERT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 3, 12, "frontend 'web': bind '127.0.0.1': missing port"));
  EXPECT_TRUE(
      has_error(result, 3, 25, "frontend 'web': bind '127.0.0.1:http': invalid port 'http'"));
  EXPECT_TRUE(has_error(result, 3, 43,
                        "frontend 'web': bind '::1:80': IPv6 addresses must be written in "
                        "brackets"));
  EXPECT_TRUE(
      has_error(result, 8, 11, "server 's1' of backend 'app': address '10.0.0.1': missing port"));
  EXPECT_TRUE(has_error(result, 9, 21,
                        "server 's2' of backend 'app': address '10.0.0.1:70000': port 70000 is "
                        "out of range (1-65535)"));
}

TEST(ConfigLoader, PortZeroIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:0", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:0"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 2, 15, "frontend 'web': bind '127.0.0.1:0': port 0 is not allowed"));
  EXPECT_TRUE(has_error(result, 4, 23,
                        "server 's1' of backend 'app': address '127.0.0.1:0': port 0 is not "
                        "allowed"));
}

TEST(ConfigLoader, WildcardServerAddressIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "*:8080", default_backend: app}
backends:
  app:
    servers:
      s1: "0.0.0.0:9001"
      s2: {address: "[::]:9002"}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 6, 11, "address '0.0.0.0:9001': wildcard address is not allowed"));
  EXPECT_TRUE(has_error(result, 7, 21, "address '[::]:9002': wildcard address is not allowed"));
}

// A minimal chroot may have no /etc/hosts: then "localhost" is not a name the
// system can resolve and the resolution tests have nothing to check.
bool system_resolves_localhost() {
  addrinfo* res = nullptr;
  int rc = getaddrinfo("localhost", nullptr, nullptr, &res);
  if (res) freeaddrinfo(res);
  return rc == 0;
}

TEST(ConfigLoader, ServerHostNameIsResolved) {
  if (!system_resolves_localhost()) GTEST_SKIP() << "this system cannot resolve localhost";
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "localhost:9001"}}
)");
  ASSERT_TRUE(loads(result));
  const ServerConfig& s1 = result.config->backends.at(0).servers.at(0);
  EXPECT_EQ(s1.address_text, "localhost:9001");
  EXPECT_EQ(s1.addr.port(), 9001);
}

TEST(ConfigLoader, ServerWithoutAddressIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    servers:
      s1: {weight: 2}
      s2:
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 6, 7, "server 's1' of backend 'app' has no address"));
  EXPECT_TRUE(has_error(result, 7, 7, "server 's2' of backend 'app': address: missing value"));
}

TEST(ConfigLoader, DuplicateFrontend) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
  web:
    bind: "127.0.0.1:8081"
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(only_error(result, 5, 3, "duplicate"));
  EXPECT_EQ(result.errors[0].message, "duplicate frontend 'web' (first defined at line 2)");
}

TEST(ConfigLoader, DuplicateBackendAndServer) {
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

TEST(ConfigLoader, DuplicateKeyInAnyMap) {
  const LoadResult result = load(R"(global:
  threads: 2
  threads: 4
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, default_backend: other}
backends:
  app: {servers: {s1: {address: "127.0.0.1:9001", address: "127.0.0.1:9002"}}}
global: {}
)");
  ASSERT_EQ(result.errors.size(), 4U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 3, 3, "duplicate key 'threads' in global (first defined at line 2)"));
  EXPECT_TRUE(has_error(result, 5, 55, "duplicate key 'default_backend' in frontend 'web'"));
  EXPECT_TRUE(has_error(result, 7, 51,
                        "duplicate key 'address' in server 's1' of backend 'app' (first defined "
                        "at line 7)"));
  EXPECT_TRUE(has_error(result, 8, 1, "duplicate key 'global' at the top level"));
}

TEST(ConfigLoader, DuplicateBindAcrossFrontends) {
  const LoadResult result = load(R"(frontends:
  one:
    bind: ["127.0.0.1:8080"]
    default_backend: app
  two:
    bind: ["127.0.0.1:8081", "127.0.0.1:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 6, 30,
                         "frontend 'two': bind '127.0.0.1:8080' is already used by frontend "
                         "'one' (line 3)"));
}

TEST(ConfigLoader, DuplicateBindWithinAFrontendComparesAddressesNotText) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["*:8080", "0.0.0.0:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 3, 22,
                         "frontend 'web': bind '0.0.0.0:8080' is already used by this frontend "
                         "(line 3)"));
}

TEST(ConfigLoader, Ipv4AndIpv6WildcardsOnTheSamePortAreAllowed) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["0.0.0.0:8080", "[::]:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  const auto& binds = result.config->frontends.at(0).binds;
  ASSERT_EQ(binds.size(), 2U);
  EXPECT_EQ(binds[0].key(), "tcp:0.0.0.0:8080");
  EXPECT_EQ(binds[1].key(), "tcp:[::]:8080");
  EXPECT_TRUE(binds[1].v6only);
}

TEST(ConfigLoader, V6onlyOnAnIpv4BindIsAWarning) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: [{address: "0.0.0.0:8080", v6only: false}]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.warnings.size(), 1U) << describe(result.warnings);
  EXPECT_EQ(result.warnings[0].to_string(),
            "test.yaml:3:46: frontend 'web': bind '0.0.0.0:8080': v6only has no effect on IPv4");
}

TEST(ConfigLoader, MissingBackendReference) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: nope
  api:
    bind: "127.0.0.1:8081"
    default_backend: ap
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_EQ(result.errors[0].to_string(),
            "test.yaml:4:22: frontend 'web': default_backend 'nope' does not exist");
  EXPECT_EQ(result.errors[1].to_string(),
            "test.yaml:7:22: frontend 'api': default_backend 'ap' does not exist; did you mean "
            "'app'?");
}

TEST(ConfigLoader, ModeMismatchBetweenFrontendAndBackend) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    mode: tcp
    default_backend: app
backends:
  app:
    mode: http
    servers: {s1: "127.0.0.1:9001"}
)");
  EXPECT_TRUE(only_error(result, 5, 22,
                         "frontend 'web' is in tcp mode but its default_backend 'app' is in "
                         "http mode"));
}

TEST(ConfigLoader, FrontendWithoutBind) {
  const LoadResult result = load(R"(frontends:
  web:
    default_backend: app
  api:
    bind: []
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 3, "frontend 'web' has no bind address"));
  EXPECT_TRUE(has_error(result, 5, 11, "frontend 'api': bind: the list is empty"));
}

TEST(ConfigLoader, FrontendWithoutDefaultBackend) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 2, 3, "frontend 'web' has no default_backend"));
}

TEST(ConfigLoader, InvalidNames) {
  const LoadResult result = load(R"(frontends:
  "my web":
    bind: "127.0.0.1:8080"
    default_backend: "app/1"
backends:
  "app/1":
    servers: {"s 1": "127.0.0.1:9001"}
)");
  ASSERT_EQ(result.errors.size(), 3U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 3,
                        "invalid frontend name 'my web' (use letters, digits, '_', '.' and '-')"));
  EXPECT_TRUE(has_error(result, 6, 3, "invalid backend name 'app/1'"));
  EXPECT_TRUE(has_error(result, 7, 15, "invalid server name 's 1'"));
}

TEST(ConfigLoader, BackendWithoutServersIsAWarning) {
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

TEST(ConfigLoader, UnusedBackendAndTcpForwardforAreWarnings) {
  const LoadResult result = load(R"(frontends:
  db:
    bind: "127.0.0.1:5432"
    mode: tcp
    forwardfor: true
    default_backend: db
backends:
  db: {mode: tcp, servers: {s1: "127.0.0.1:15432"}}
  spare: {mode: tcp, servers: {s1: "127.0.0.1:15433"}}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.warnings.size(), 2U) << describe(result.warnings);
  EXPECT_EQ(result.warnings[0].to_string(),
            "test.yaml:5:17: frontend 'db': forwardfor has no effect in tcp mode");
  EXPECT_EQ(result.warnings[1].to_string(),
            "test.yaml:9:3: backend 'spare' is not used by any frontend");
}

TEST(ConfigLoader, UserAndGroupMustExist) {
  const LoadResult result = load(R"(global:
  user: weir-test-no-such-user
  group: weir-test-no-such-group
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 9, "global: user: no such user 'weir-test-no-such-user'"));
  EXPECT_TRUE(has_error(result, 3, 10, "global: group: no such group 'weir-test-no-such-group'"));
}

TEST(ConfigLoader, LogTargetsAndFormats) {
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

TEST(ConfigLoader, SingleLogAndBindNeedNoList) {
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

TEST(ConfigLoader, PidfileMustBeAbsolute) {
  const LoadResult result = load(R"(global: {pidfile: weir.pid}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 1, 19,
                         "global: pidfile: must be an absolute path (got "
                         "'weir.pid')"));
}

TEST(ConfigLoader, EveryErrorIsReportedInFileOrder) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:80800"
    default_backend: nope
    maxcon: 5
global:
  threads: 0
backends:
  app:
    servers: {s1: "0.0.0.0:1"}
)");
  ASSERT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_FALSE(result.config);
  const int lines[] = {3, 4, 5, 7, 10};
  for (size_t i = 0; i < result.errors.size(); ++i) {
    EXPECT_EQ(result.errors[i].line, lines[i]) << describe(result.errors);
    EXPECT_EQ(result.errors[i].file, "test.yaml");
  }
}

TEST(ConfigLoader, SecondYamlDocumentIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
---
global: {threads: 2}
)");
  EXPECT_TRUE(only_error(result, 5, 1, "only one YAML document is allowed"));
}

TEST(ConfigLoader, AliasesAreFollowed) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
  api: {bind: "127.0.0.1:8081", default_backend: app, timeouts: &short {client: 2s}}
  adm: {bind: "127.0.0.1:8082", default_backend: app, timeouts: *short}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->frontends.at(2).timeouts.client, 2000);
}

TEST(ConfigLoader, MergeKeysAreNotSupported) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: &base {servers: {s1: "127.0.0.1:9001"}}
  api:
    <<: *base
)");
  EXPECT_TRUE(has_error(result, 6, 5, "merge keys ('<<') are not supported"));
}

TEST(ConfigLoader, LoadTextUsesTheGivenNameInMessages) {
  const LoadResult result = load_config_text("global: 1\n", "/etc/weir/weir.yaml");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_EQ(result.errors[0].to_string(), "/etc/weir/weir.yaml:1:1: no frontends defined");
  EXPECT_EQ(result.errors[1].to_string(),
            "/etc/weir/weir.yaml:1:9: global: expected a map (got '1')");
}

TEST(ConfigModel, ErrorToString) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "boom"}).to_string(), "a.yaml:3:7: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 3, 0, "boom"}).to_string(), "a.yaml:3: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "boom"}).to_string(), "a.yaml: boom");
}

TEST(ConfigModel, FindBackend) {
  Config config;
  config.backends.resize(2);
  config.backends[0].name = "a";
  config.backends[1].name = "b";
  EXPECT_EQ(config.find_backend("b"), &config.backends[1]);
  EXPECT_EQ(config.find_backend("c"), nullptr);
  EXPECT_EQ(config.backend_index("a"), 0);
  EXPECT_EQ(config.backend_index("c"), -1);
}

TEST(ConfigModel, BindKeyUsesTheResolvedAddress) {
  BindConfig bind;
  bind.address_text = "*:80";
  EXPECT_EQ(bind.key(), "tcp:*:80");  // not resolved yet: the text
  bind.addr = parse_address("*:80", true, nullptr).value();
  EXPECT_EQ(bind.key(), "tcp:0.0.0.0:80");
}

TEST(ExpandEnv, ReplacesVariablesAndDefaults) {
  setenv("WEIR_TEST_A", "alpha", 1);
  setenv("WEIR_TEST_EMPTY", "", 1);
  unsetenv("WEIR_TEST_UNSET");
  const std::pair<const char*, const char*> cases[] = {
      {"plain", "plain"},
      {"${WEIR_TEST_A}", "alpha"},
      {"x${WEIR_TEST_A}y${WEIR_TEST_A}", "xalphayalpha"},
      {"${WEIR_TEST_UNSET:-fallback}", "fallback"},
      {"${WEIR_TEST_EMPTY:-fallback}", "fallback"},
      {"${WEIR_TEST_A:-fallback}", "alpha"},
      {"${WEIR_TEST_EMPTY}", ""},
      {"${WEIR_TEST_UNSET:-}", ""},
      {"${WEIR_TEST_UNSET:-a:-b}", "a:-b"},
      {"$${WEIR_TEST_A}", "${WEIR_TEST_A}"},
      {"$HOME $ {x} $", "$HOME $ {x} $"},
  };
  for (const auto& [in, out] : cases) {
    std::string error;
    const auto expanded = config_detail::expand_env(in, &error);
    ASSERT_TRUE(expanded.has_value()) << in << ": " << error;
    EXPECT_EQ(*expanded, out) << in;
  }
}

TEST(ExpandEnv, RejectsUnsetUnterminatedAndInvalidReferences) {
  unsetenv("WEIR_TEST_UNSET");
  const std::pair<const char*, const char*> cases[] = {
      {"${WEIR_TEST_UNSET}",
       "environment variable 'WEIR_TEST_UNSET' is not set (write ${WEIR_TEST_UNSET:-default} to "
       "give a default)"},
      {"${WEIR_TEST_A", "unterminated '${' (expected '}')"},
      {"${}", "invalid environment variable name ''"},
      {"${1X}", "invalid environment variable name '1X'"},
      {"${A-B}", "invalid environment variable name 'A-B'"},
  };
  for (const auto& [in, message] : cases) {
    std::string error;
    EXPECT_FALSE(config_detail::expand_env(in, &error).has_value()) << in;
    EXPECT_EQ(error, message) << in;
  }
}

TEST(ClosestMatch, SuggestsOnlyNearCandidates) {
  const std::string_view keys[] = {"maxconn", "mode", "timeouts", "log"};
  EXPECT_EQ(config_detail::closest_match("maxconns", keys), "maxconn");
  EXPECT_EQ(config_detail::closest_match("mdoe", keys), "mode");
  EXPECT_EQ(config_detail::closest_match("timeout", keys), "timeouts");
  EXPECT_EQ(config_detail::closest_match("colour", keys), "");
  EXPECT_EQ(config_detail::closest_match("x", keys), "");  // "log" is 3 edits away
  EXPECT_EQ(config_detail::edit_distance("kitten", "sitting"), 3U);
  EXPECT_EQ(config_detail::edit_distance("", "abc"), 3U);
}

// kMinimal with `stats_line` (or lines) as line 5, inside frontend 'web'.
std::string with_stats(std::string_view stats_lines, std::string_view mode = "http") {
  std::string text =
      "frontends:\n  web:\n    bind: [\"127.0.0.1:8080\"]\n    default_backend: app\n";
  text += stats_lines;
  text += "\n    mode: " + std::string(mode) +
          "\nbackends:\n  app:\n    mode: " + std::string(mode) +
          "\n    servers: {s1: \"127.0.0.1:9001\"}\n";
  return text;
}

TEST(ConfigLoader, StatsPageShortFormAndDefaults) {
  const LoadResult result = load(with_stats("    stats: /stats"));
  ASSERT_TRUE(loads(result));
  const StatsPageConfig& stats = result.config->frontends[0].stats;
  EXPECT_EQ(stats.uri, "/stats");
  EXPECT_EQ(stats.refresh_ms, 0);
  EXPECT_EQ(stats.realm, "weir statistics");
  EXPECT_TRUE(stats.users.empty());
  EXPECT_FALSE(stats.hide_version);
  EXPECT_EQ(stats.mark.line, 5);
  EXPECT_EQ(stats.mark.column, 12);
  // Without stats, no page.
  EXPECT_EQ(load(kMinimal).config->frontends[0].stats.uri, "");
}

TEST(ConfigLoader, StatsPageFullForm) {
  setenv("WEIR_TEST_STATS_PASSWORD", "from-env", 1);
  const LoadResult result = load(with_stats(R"(    metrics: /metrics
    stats:
      uri: /admin/stats
      refresh: 1500ms
      hide_version: true
      auth:
        realm: "weir admin"
        users: {admin: "s3cret:x", ops: "${WEIR_TEST_STATS_PASSWORD}"})"));
  ASSERT_TRUE(loads(result));
  const StatsPageConfig& stats = result.config->frontends[0].stats;
  EXPECT_EQ(stats.uri, "/admin/stats");
  EXPECT_EQ(stats.refresh_ms, 2000);  // rounded up to whole seconds
  EXPECT_TRUE(stats.hide_version);
  EXPECT_EQ(stats.realm, "weir admin");
  ASSERT_EQ(stats.users.size(), 2U);
  EXPECT_EQ(stats.users[0], std::make_pair(std::string("admin"), std::string("s3cret:x")));
  EXPECT_EQ(stats.users[1], std::make_pair(std::string("ops"), std::string("from-env")));
  EXPECT_EQ(result.config->frontends[0].metrics_uri, "/metrics");
}

TEST(ConfigLoader, StatsPageUriErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: stats")), 5, 12,
                         "frontend 'web': stats: uri must start with '/' (got 'stats')"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: \"/s?x\"}")), 5, 18,
                         "stats: uri must be a plain path, without '?', '#', ';' or spaces"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {refresh: 5s}")), 5, 12,
                         "frontend 'web': stats: missing uri"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:")), 5, 5, "frontend 'web': stats: uri"));
  EXPECT_TRUE(only_error(load(with_stats("    metrics: /m\n    stats: {uri: /m}")), 6, 18,
                         "frontend 'web': stats: uri '/m' is already the metrics uri"));
  EXPECT_TRUE(
      only_error(load(with_stats("    stats: [/stats]")), 5, 12, "frontend 'web': stats: uri"));
}

TEST(ConfigLoader, StatsPageValueErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refesh: 5s}")), 5, 22,
                         "unknown key 'refesh' in frontend 'web'.stats; did you mean 'refresh'?"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refresh: 500ms}")), 5, 31,
                         "frontend 'web': stats: refresh must be 0 (off) or at least 1s"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refresh: soon}")), 5, 31,
                         "frontend 'web': stats: refresh"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, hide_version: maybe}")), 5, 36,
                         "frontend 'web': stats: hide_version"));
  const LoadResult off = load(with_stats("    stats: {uri: /s, refresh: 0}"));
  ASSERT_TRUE(loads(off));
  EXPECT_EQ(off.config->frontends[0].stats.refresh_ms, 0);
}

TEST(ConfigLoader, StatsPageAuthErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {realm: x}")), 7,
                         13, "frontend 'web': stats: auth: missing users"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {}}")), 7,
                         21, "frontend 'web': stats: auth: users: no user defined"));
  EXPECT_TRUE(
      only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {\"a:b\": c}}")),
                 7, 22, "frontend 'web': stats: auth: invalid user name 'a:b'"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {a: }}")),
                         7, 22, "frontend 'web': stats: auth: password of 'a'"));
  EXPECT_TRUE(only_error(
      load(with_stats("    stats:\n      uri: /s\n      auth: {realm: 'a\"b', users: {a: b}}")), 7,
      21, "frontend 'web': stats: auth: realm must be 1 to 128 printable characters"));
  EXPECT_TRUE(only_error(
      load(with_stats("    stats:\n      uri: /s\n      auth: {users: {a: b}, user: {c: d}}")), 7,
      29, "unknown key 'user' in frontend 'web'.stats.auth; did you mean 'users'?"));
  EXPECT_TRUE(has_error(
      load(with_stats("    stats:\n      uri: /s\n      auth:\n        users:\n          a: b\n"
                      "          a: c")),
      10, 11, "duplicate user 'a' in frontend 'web'.stats.auth.users (first defined at line 9)"));
}

TEST(ConfigLoader, StatsPageNeedsHttpMode) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: /stats", "tcp")), 5, 12,
                         "frontend 'web': stats needs mode http"));
  // The mode may come from defaults.
  const LoadResult result = load(R"(defaults: {mode: tcp}
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    stats: /stats
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 6, 12, "frontend 'web': stats needs mode http"));
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

TEST(ConfigLoader, SyslogTargetsFormatsAndTheirErrors) {
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

namespace weir {
namespace {

TEST(ConfigLoader, RuntimeApiOwnerGroupAndLoopbackDefault) {
  LoadResult ok = load_config_text(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, owner: root, group: root, mode: "0660"}
    - {address: "9999", level: user}
    - {address: "192.0.2.1:9998", level: user}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                   "test.yaml");
  ASSERT_TRUE(ok.errors.empty()) << ok.errors[0].to_string();
  const auto& api = ok.config->global.runtime_api;
  ASSERT_EQ(api.size(), 3u);
  EXPECT_EQ(api[0].owner, "root");
  EXPECT_EQ(api[0].group, "root");
  EXPECT_EQ(api[1].addr.to_string(), "127.0.0.1:9999");
  ASSERT_EQ(ok.warnings.size(), 1u);
  EXPECT_NE(ok.warnings[0].to_string().find(
                "test.yaml:5:17: global: runtime_api: 192.0.2.1:9998 is not a loopback address"),
            std::string::npos)
      << ok.warnings[0].to_string();

  LoadResult bad = load_config_text(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, owner: no-such-user-here}
    - {address: "127.0.0.1:9999", group: root}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                    "test.yaml");
  std::string all;
  for (const ConfigError& e : bad.errors) all += e.to_string() + "\n";
  EXPECT_NE(all.find("test.yaml:3:46: global: runtime_api: owner: no user named "
                     "'no-such-user-here' on this system"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("test.yaml:4:42: global: runtime_api: group only applies to a Unix socket"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

TEST(ConfigLoader, HealthChecksFromTheBackendAndPerServer) {
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

}  // namespace
}  // namespace weir

namespace weir {
namespace {

TEST(ConfigLoader, AgentsTcpSequencesAndPassiveChecks) {
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

TEST(ConfigLoader, BadAgentsSequencesAndPassiveChecksAreErrors) {
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
