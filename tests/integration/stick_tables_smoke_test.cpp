// Stick tables as an operator uses them (doc/stick-tables.md): the four recipes
// of the documentation end to end, with real clients from chosen source
// addresses, real origins and `show table` on the runtime API; and the runtime
// API's set / clear table acting on what rules decide. Also run against the
// ASan+UBSan and TSan builds (label "sanitize"). The recipes' configurations are
// the documentation's, with placeholders (@LIMIT@, ...) for the numbers the test
// scales down; nothing asserts a duration.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/stick_tables.h"
#include "tests/support/client_swarm.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test::sticky {
namespace {

using StickSmoke = StickTest;

// curl from a source address: the status it printed ("000": no response).
std::string curl_status(uint16_t port, const std::string& source, const std::string& target) {
  CommandResult r =
      run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source,
                   "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + target});
  return r.out;
}

// ---------------------------------------------------------------------------
// Recipe: 429 above 100 requests per 10 seconds per client address (the
// documentation's @LIMIT@ is 100; the test's is 10).

constexpr const char* kRateLimitRecipe = R"y(stick_tables:
  per_ip:
    type: ip
    size: 1m
    expire: 1m
    store: ["http_req_rate(10s)"]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    http_request:
      - track: per_ip
      - deny: {status: 429}
        if: "{ sc0_http_req_rate gt @LIMIT@ }"
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickSmoke, RecipeRateLimitPerClientAddressAnswers429AboveTheLimit) {
  OriginServer app("app");
  ASSERT_TRUE(start(kRateLimitRecipe, {{"@LIMIT@", "10"}, {"@APP@", app.address()}}));
  // The rate reads exactly the count when every request lands in one period.
  stay_within_one_period(10000, 4000);
  for (int i = 1; i <= 10; ++i) ASSERT_EQ(status_of("/", {}, "127.0.0.1"), 200) << "request " << i;
  EXPECT_EQ(status_of("/", {}, "127.0.0.1"), 429);
  EXPECT_EQ(status_of("/", {}, "127.0.0.1"), 429);
  // Another client address has a rate of its own.
  EXPECT_EQ(curl_status(port_, "127.0.0.2", "/"), "200");
  EXPECT_EQ(app.requests_served(), 11);
  // Refused requests count too: a client that keeps hammering stays refused.
  TableView t = show("per_ip");
  EXPECT_EQ(t.at("127.0.0.1", "http_req_rate(10000)"), "12") << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "http_req_rate(10000)"), "1") << t.text;
  EXPECT_EQ(t.table["used"], "2") << t.text;
}

// ---------------------------------------------------------------------------
// Recipe: a quota per API key (the documentation's @QUOTA@ is 1000 requests an
// hour; the test's is 5). A request without a key is not tracked (a key sample
// without a value tracks nothing) and is answered 401; so is one with an empty
// key (`-m found` would let "X-Api-Key:" through, and an empty key is tracked
// like any other, one quota shared by every such client).

constexpr const char* kApiQuotaRecipe = R"y(stick_tables:
  api_quota:
    type: string
    key_size: 64
    size: 100k
    expire: 2h
    store: ["http_req_rate(1h)"]
frontends:
  api:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    http_request:
      - track: {table: api_quota, key: "hdr(x-api-key)"}
      - deny: {status: 401}
        unless: "{ hdr(x-api-key) -m reg . }"
      - deny: {status: 429}
        if: "{ sc0_http_req_rate gt @QUOTA@ }"
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickSmoke, RecipeApiKeyQuotaRefusesAKeyOverItsQuotaOnly) {
  OriginServer app("app");
  ASSERT_TRUE(start(kApiQuotaRecipe, {{"@QUOTA@", "5"}, {"@APP@", app.address()}}));
  stay_within_one_period(3600000, 5000);
  {
    // Key A's five requests on one keep-alive connection, each tracked on its own.
    HttpClient a(port_);
    for (int i = 1; i <= 5; ++i) {
      auto r = a.request("GET", "/", {{"X-Api-Key", "key-A"}});
      ASSERT_TRUE(r) << "request " << i;
      ASSERT_EQ(r->status, 200) << "request " << i;
    }
    auto r = a.request("GET", "/", {{"X-Api-Key", "key-A"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429);
  }
  EXPECT_EQ(status_of("/", {{"X-Api-Key", "key-A"}}), 429);
  EXPECT_EQ(status_of("/", {{"X-Api-Key", "key-B"}}), 200);
  EXPECT_EQ(status_of("/"), 401);
  EXPECT_EQ(status_of("/", {{"X-Other", "key-A"}}), 401);
  EXPECT_EQ(status_of("/", {{"X-Api-Key", ""}}), 401);
  EXPECT_EQ(app.requests_served(), 6);
  TableView t = show("api_quota");
  EXPECT_EQ(t.at("key-A", "http_req_rate(3600000)"), "7") << t.text;
  EXPECT_EQ(t.at("key-B", "http_req_rate(3600000)"), "1") << t.text;
  // Requests without the header tracked nothing (the empty key's entry aside).
  t.entries.erase("");
  EXPECT_EQ(t.entries.size(), 2u) << t.text;
}

// ---------------------------------------------------------------------------
// Recipe: block a client for 10 minutes after 20 errors in a minute (the
// documentation's @ERRORS@ is 20 and @BLOCK@ 10m; the test's 3 and 2s). The
// flag (gpt0) lives as long as the entry: the block ends once the client has
// sent nothing for @BLOCK@ (each refused request renews it).

constexpr const char* kBlockRecipe = R"y(stick_tables:
  abusers:
    type: ip
    size: 100k
    expire: @BLOCK@
    store: ["http_err_rate(1m)", gpt0]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    http_request:
      - track: abusers
      - sc_set_gpt: {index: 0, counter: 0, value: 1}
        if: "{ sc0_http_err_rate ge @ERRORS@ }"
      - deny: {status: 403}
        if: "{ sc0_get_gpt0 gt 0 }"
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickSmoke, RecipeBlockAfterErrorsRefusesEverythingUntilTheClientStaysAway) {
  OriginServer app("app");
  ASSERT_TRUE(
      start(kBlockRecipe, {{"@ERRORS@", "3"}, {"@BLOCK@", "2s"}, {"@APP@", app.address()}}));
  stay_within_one_period(60000, 4000);
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(status_of("/nope?status=404"), 404) << "request " << i;
  EXPECT_EQ(status_of("/"), 403);
  EXPECT_EQ(status_of("/nope?status=404"), 403);
  EXPECT_EQ(app.requests_served(), 3);
  EXPECT_EQ(curl_status(port_, "127.0.0.2", "/"), "200");
  TableView t = show("abusers");
  EXPECT_EQ(t.at("127.0.0.1", "gpt(0)"), "1") << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "gpt(0)"), "0") << t.text;
  // Without requests, the entry expires and the client is welcome again.
  ASSERT_TRUE(wait_table(
      "abusers", [](const TableView& v) { return !v.has("127.0.0.1"); }, &t, 15000))
      << t.text;
  EXPECT_EQ(status_of("/"), 200);
  t = show("abusers");
  EXPECT_EQ(t.at("127.0.0.1", "gpt(0)"), "0") << t.text;
}

// ---------------------------------------------------------------------------
// Recipe: at most 10 connections at once per client address, in http and tcp
// mode (@MODE@; the documentation's example is in http mode, the default).

constexpr const char* kConnLimitRecipe = R"y(stick_tables:
  conns_per_ip:
    type: ip
    size: 100k
    expire: 1m
    store: [conn_cur]
frontends:
  web:
    mode: @MODE@
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    tcp_request:
      - connection: {track: conns_per_ip}
      - connection: reject
        if: "{ sc0_conn_cur gt 10 }"
backends:
  app:
    mode: @MODE@
    servers: {a1: "@APP@"}
)y";

class StickSmokeConnLimit : public StickTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(StickSmokeConnLimit, RecipeTenConnectionsPerAddressTheEleventhIsClosed) {
  OriginServer app("app");
  ASSERT_TRUE(start(kConnLimitRecipe, {{"@MODE@", GetParam()}, {"@APP@", app.address()}}));
  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(std::make_unique<HttpClient>(port_));
  TableView t;
  ASSERT_TRUE(becomes("conns_per_ip", "127.0.0.1", "conn_cur", "10"));

  HttpClient eleventh(port_);
  eleventh.send_raw("GET / HTTP/1.1\r\nHost: test\r\n\r\n");
  EXPECT_FALSE(eleventh.read_response(5000));
  EXPECT_TRUE(eleventh.wait_closed(5000));
  ASSERT_TRUE(becomes("conns_per_ip", "127.0.0.1", "conn_cur", "10"));
  // Another address is not limited by these ten.
  EXPECT_EQ(status_of("/", {}, "127.0.0.2"), 200);

  // The ten are served; one closing makes room for a new one.
  auto r = idle[1]->request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  idle[0]->close();
  ASSERT_TRUE(becomes("conns_per_ip", "127.0.0.1", "conn_cur", "9"));
  HttpClient again(port_);
  r = again.request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  again.close();
  idle.clear();
  ASSERT_TRUE(wait_field("conns_per_ip", "127.0.0.1", "conn_cur", "0", &t)) << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "use"), "0") << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "conn_cur"), "0") << t.text;
}

INSTANTIATE_TEST_SUITE_P(Modes, StickSmokeConnLimit, ::testing::Values("http", "tcp"),
                         [](const auto& p) { return std::string(p.param); });

// ---------------------------------------------------------------------------
// The runtime API changes what rules decide: `set table` raises a client's flag
// and the next request is refused; `clear table` forgets a client; `show table`
// filters on data. Levels: set and clear need the admin level.

constexpr const char* kFlagConfig = R"y(stick_tables:
  clients:
    type: ip
    size: 1k
    expire: 10m
    store: [http_req_cnt, gpt0, gpc0]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    http_request:
      - track: clients
      - deny: {status: 403}
        if: "{ sc0_get_gpt0 gt 0 }"
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickSmoke, SetTableFlagsAClientThatRulesThenRefuseAndClearTableForgetsIt) {
  OriginServer app("app");
  ASSERT_TRUE(start(kFlagConfig, {{"@APP@", app.address()}}));
  ASSERT_EQ(status_of("/", {}, "127.0.0.1"), 200);
  ASSERT_EQ(status_of("/", {}, "127.0.0.2"), 200);
  ASSERT_EQ(status_of("/", {}, "127.0.0.2"), 200);

  CommandResult set = weirctl({"-s", admin(), "set table clients key 127.0.0.2 data.gpt0 1"});
  EXPECT_EQ(set.exit_code, 0) << set.out;
  EXPECT_EQ(set.out, "");
  EXPECT_EQ(status_of("/", {}, "127.0.0.2"), 403);
  EXPECT_EQ(status_of("/", {}, "127.0.0.1"), 200);

  // Filters on data; one entry by its key.
  TableView t = parse_table(api("show table clients data.gpt0 gt 0"));
  EXPECT_EQ(t.entries.size(), 1u) << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "http_req_cnt"), "3") << t.text;
  t = parse_table(api("show table clients data.http_req_cnt ge 2 data.gpt0 eq 0"));
  EXPECT_EQ(t.entries.size(), 1u) << t.text;
  EXPECT_TRUE(t.has("127.0.0.1")) << t.text;
  t = parse_table(api("show table clients key 127.0.0.1"));
  EXPECT_EQ(t.entries.size(), 1u) << t.text;
  EXPECT_EQ(t.table["used"], "2") << t.text;

  // The user level reads but cannot change.
  CommandResult user = weirctl({"-s", user_socket(), "clear table clients key 127.0.0.2"});
  EXPECT_EQ(user.exit_code, 1);
  EXPECT_NE(user.out.find("needs the admin level"), std::string::npos) << user.out;
  EXPECT_TRUE(
      parse_table(weirctl({"-s", user_socket(), "show table clients"}).out).has("127.0.0.2"));

  EXPECT_EQ(weirctl({"-s", admin(), "clear table clients key 127.0.0.2"}).out, "1 entry removed\n");
  EXPECT_EQ(status_of("/", {}, "127.0.0.2"), 200);
  t = show("clients");
  EXPECT_EQ(t.at("127.0.0.2", "http_req_cnt"), "1") << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "gpt(0)"), "0") << t.text;
  EXPECT_EQ(weirctl({"-s", admin(), "clear table clients data.http_req_cnt ge 2"}).out,
            "1 entry removed\n");
  t = show("clients");
  EXPECT_FALSE(t.has("127.0.0.1")) << t.text;
  EXPECT_EQ(weirctl({"-s", admin(), "clear table clients"}).out, "1 entry removed\n");
  EXPECT_EQ(show("clients").table["used"], "0");
}

// Both threads of the worker count in the same entries at once (this file
// also runs under TSan): a burst of concurrent clients, each one request,
// counted exactly once in a connection-level and a request-level table.
constexpr const char* kBurstConfig = R"y(stick_tables:
  conns:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt, sess_cnt, http_req_cnt, "http_req_rate(1m)", bytes_out_cnt]
  hosts:
    type: string
    size: 1k
    store: [conn_cur, conn_cnt, http_req_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    tcp_request:
      - connection: {track: conns}
    http_request:
      - track: {table: hosts, key: "hdr(host)", counter: 1}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickSmoke, ConcurrentClientsOnTwoThreadsAreEachCountedOnce) {
  OriginServer app("app");
  app.set_default_delay_ms(5);  // so that the requests overlap
  ASSERT_TRUE(start(kBurstConfig, {{"@APP@", app.address()}}));
  constexpr size_t kClients = 100;
  SwarmOptions o;
  o.request = "GET / HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n";
  ClientSwarm swarm(port_, kClients, o);
  ASSERT_TRUE(swarm.wait_finished(60000));
  size_t ok = 0;
  for (const SwarmResult& r : swarm.results()) ok += r.status() == 200 ? 1 : 0;
  EXPECT_EQ(ok, kClients);
  const std::string n = std::to_string(kClients);
  ASSERT_TRUE(becomes("conns", "127.0.0.1", "conn_cur", "0"));
  TableView t = show("conns");
  EXPECT_EQ(t.at("127.0.0.1", "conn_cnt"), n) << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "sess_cnt"), n) << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "http_req_cnt"), n) << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "use"), "0") << t.text;
  ASSERT_TRUE(becomes("hosts", "burst", "conn_cur", "0"));
  t = show("hosts");
  EXPECT_EQ(t.at("burst", "conn_cnt"), n) << t.text;
  EXPECT_EQ(t.at("burst", "http_req_cnt"), n) << t.text;
}

}  // namespace
}  // namespace weir::test::sticky
