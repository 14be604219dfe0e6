// The whole file: what every configuration gets, the top level, ${VAR} in values, what spans
// sections (the backends frontends name, names) and the order of messages.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

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

TEST(ConfigLoader, TheDebianPackagesConfigurationOpensNoPublicPort) {
  // packaging/weir.yaml, /etc/weir/weir.yaml as the package installs it: only
  // the stats page and /metrics, on the loopback address, and the workers as
  // the package's weir user.
  const std::string path = std::string(WEIR_SOURCE_DIR) + "/packaging/weir.yaml";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The weir user and group exist where the package is installed, not here:
  // the loader checks that they exist, so root stands in for them.
  for (const std::string key : {"user: weir\n", "group: weir\n"}) {
    const size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    text.replace(at, key.size(), key.substr(0, key.find(' ') + 1) + "root\n");
  }
  const LoadResult result = load_config_text(text, path);
  ASSERT_TRUE(loads(result));
  EXPECT_TRUE(result.warnings.empty()) << describe(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.global.state_dir, "/var/lib/weir");
  ASSERT_EQ(config.frontends.size(), 1U);
  const FrontendConfig& fe = config.frontends[0];
  ASSERT_EQ(fe.binds.size(), 1U);
  EXPECT_EQ(fe.binds[0].key(), "tcp:127.0.0.1:8404");
  EXPECT_EQ(fe.stats.uri, "/stats");
  EXPECT_EQ(fe.metrics_uri, "/metrics");
  EXPECT_TRUE(fe.default_backend.empty());
  EXPECT_TRUE(config.backends.empty());
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

TEST(ConfigLoader, LoadTextUsesTheGivenNameInMessages) {
  const LoadResult result = load_config_text("global: 1\n", "/etc/weir/weir.yaml");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_EQ(result.errors[0].to_string(), "/etc/weir/weir.yaml:1:1: no frontends defined");
  EXPECT_EQ(result.errors[1].to_string(),
            "/etc/weir/weir.yaml:1:9: global: expected a map (got '1')");
}

}  // namespace
}  // namespace weir
