// Stick tables end to end, beyond the smoke tests' recipes: conn_cur stays
// exact while connections come and go in http and tcp mode (client resets,
// refused servers retried elsewhere, servers closing mid-response); the runtime
// API's show / set / clear table with filters, keys and errors, /metrics and the
// stats page; expiry; eviction of the least recently used entry at `size` and
// tracked entries that are never evicted; keys of every type through real
// rules. Real weir, real clients (HttpClient, curl), real origins.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/stick_tables.h"
#include "tests/support/client_swarm.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/script_server.h"

namespace weir::test::sticky {
namespace {

class StickTables : public StickTest {
 protected:
  // The connections that stayed open make one more request each, then close.
  static void serve_and_close(std::vector<std::unique_ptr<HttpClient>>& kept) {
    for (auto& c : kept) {
      auto r = c->request("GET", "/");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
    }
    kept.clear();
  }
  // Every connection of the key's entry has ended: conn_cur and use come back
  // to 0, and conn_cnt counted them all.
  void expect_all_ended(const std::string& table, const std::string& key, size_t conn_cnt) {
    TableView t;
    ASSERT_TRUE(wait_field(table, key, "conn_cur", "0", &t)) << table << "\n" << t.text;
    EXPECT_EQ(t.at(key, "use"), "0") << t.text;
    EXPECT_EQ(t.at(key, "conn_cnt"), std::to_string(conn_cnt)) << t.text;
  }
};

// Closes the client's connection with a RST (SO_LINGER 0), as a client that
// crashes or gives up does.
void reset_connection(HttpClient& c) {
  linger l{1, 0};
  ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  c.close();
}

std::unique_ptr<HttpClient> connect_from(uint16_t port, const std::string& source = "") {
  return std::make_unique<HttpClient>(port, "127.0.0.1", source);
}

// A server that answers every request with a head announcing 1000 bytes,
// sends 10 of them and closes.
ScriptServer::Handler closes_mid_response() {
  return [](ScriptConn& c) {
    if (c.read_until("\r\n\r\n").empty()) return;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
    c.close();
  };
}

// The value of a sample of /metrics ("<missing>" when absent).
std::string metric(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "<missing>";
  at += series.size() + 2;
  return text.substr(at, text.find('\n', at) - at);
}

// ---------------------------------------------------------------------------
// conn_cur in http mode: a connection-long track (tcp_request) and a track per
// request (http_request), through keep-alive clients, a refused server whose
// requests are retried on the other one, clients that reset in the middle of a
// request head, a body or a wait for the server, and a server that closes in
// the middle of its response.

constexpr const char* kHttpConnCur = R"y(stick_tables:
  conns:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt, sess_cnt, http_req_cnt]
  reqs:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt, http_req_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    tcp_request:
      - connection: {track: conns}
    http_request:
      - track: {table: reqs, counter: 1}
      - tarpit: {delay: 1m}
        if: "{ path /tarpit }"
      - use_backend: broken
        if: "{ path_beg /broken }"
      - use_backend: one_at_a_time
        if: "{ path_beg /queue }"
      - use_backend: ws
        if: "{ path_beg /chat }"
backends:
  app:
    retries: 3
    servers: {refused: "127.0.0.1:@CLOSED@", ok: "@APP@"}
  broken:
    servers: {b1: "@BROKEN@"}
  one_at_a_time:
    servers: {q1: {address: "@APP@", maxconn: 1}}
  ws:
    servers: {w1: "@WS@"}
)y";

// Answers a WebSocket handshake with 101, then echoes every byte until EOF.
ScriptServer::Handler websocket_echo() {
  return [](ScriptConn& c) {
    if (c.read_until("\r\n\r\n").empty()) return;
    c.send(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    for (std::string s; !(s = c.read_some(10000)).empty();) c.send(s);
    c.shutdown_write();
  };
}

TEST_F(StickTables, ConnCurIsExactInHttpModeThroughResetsRetriesAndServerFaults) {
  OriginServer app("app");
  ScriptServer broken(closes_mid_response());
  ScriptServer ws(websocket_echo());
  ASSERT_TRUE(start(kHttpConnCur, {{"@APP@", app.address()},
                                   {"@BROKEN@", broken.address()},
                                   {"@WS@", ws.address()},
                                   {"@CLOSED@", std::to_string(free_tcp_port())}}));
  const std::string ip = "127.0.0.1";
  TableView t;
  // Three keep-alive clients, two requests each; the requests that meet the
  // refused server are retried on the other.
  std::vector<std::unique_ptr<HttpClient>> kept;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(connect_from(port_));
    for (int j = 0; j < 2; ++j) {
      auto r = kept.back()->request("GET", "/");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->header("X-Server"), "app");
    }
  }
  EXPECT_TRUE(weir_->wait_for_stdout(R"(web app/ok \S+ 200 \d+ -- \d+/\d+/\d+/\d+/[1-9] )", 5000))
      << "no request was retried:\n"
      << weir_->stdout_text();
  ASSERT_TRUE(wait_field("conns", ip, "conn_cur", "3", &t)) << t.text;
  EXPECT_EQ(t.at(ip, "use"), "3") << t.text;
  EXPECT_EQ(t.at(ip, "conn_cnt"), "3") << t.text;
  EXPECT_EQ(t.at(ip, "sess_cnt"), "3") << t.text;
  EXPECT_EQ(t.at(ip, "http_req_cnt"), "6") << t.text;
  ASSERT_TRUE(wait_field("reqs", ip, "conn_cnt", "6", &t)) << t.text;
  EXPECT_EQ(t.at(ip, "conn_cur"), "0") << t.text;
  EXPECT_EQ(t.at(ip, "use"), "0") << t.text;

  // A client resets while the server holds its request.
  {
    auto waiting = connect_from(port_);
    ASSERT_TRUE(waiting->send_raw("GET /?blackhole=1 HTTP/1.1\r\nHost: test\r\n\r\n"));
    ASSERT_TRUE(wait_field("reqs", ip, "conn_cur", "1", &t)) << t.text;
    EXPECT_EQ(t.at(ip, "use"), "1") << t.text;
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "4"));
    reset_connection(*waiting);
    ASSERT_TRUE(wait_field("reqs", ip, "conn_cur", "0", &t)) << t.text;
    EXPECT_EQ(t.at(ip, "use"), "0") << t.text;
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
  }
  // A client resets in the middle of its request head (no http_request rule
  // ran), and another in the middle of a request body.
  {
    auto head = connect_from(port_);
    ASSERT_TRUE(head->send_raw("GET / HTTP/1.1\r\nHost: te"));
    auto body = connect_from(port_);
    ASSERT_TRUE(
        body->send_raw("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
                       "only the first bytes"));
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "5"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "1"));
    reset_connection(*head);
    reset_connection(*body);
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "0"));
  }
  // The server closes in the middle of its response: the client is closed.
  {
    auto cut = connect_from(port_);
    ASSERT_TRUE(cut->send_raw("GET /broken HTTP/1.1\r\nHost: test\r\n\r\n"));
    EXPECT_FALSE(cut->read_response(5000));
    EXPECT_TRUE(cut->wait_closed(5000));
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "0"));
  }
  // Clients reset while their request waits in a backend's queue (its one
  // server slot taken by a request the server holds), or in a tarpit.
  {
    auto holder = connect_from(port_);
    ASSERT_TRUE(holder->send_raw("GET /queue?blackhole=1 HTTP/1.1\r\nHost: test\r\n\r\n"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "1"));
    auto queued = connect_from(port_);
    ASSERT_TRUE(queued->send_raw("GET /queue HTTP/1.1\r\nHost: test\r\n\r\n"));
    auto tarpitted = connect_from(port_);
    ASSERT_TRUE(tarpitted->send_raw("GET /tarpit HTTP/1.1\r\nHost: test\r\n\r\n"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "3"));
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "6"));
    ASSERT_TRUE(wait_until(
        [&] {
          for (auto& row : parse_stat_csv(api("show stat")))
            if (row["pxname"] == "one_at_a_time" && row["svname"] == "BACKEND")
              return row["qcur"] == "1";
          return false;
        },
        5000))
        << api("show stat");
    reset_connection(*queued);
    reset_connection(*tarpitted);
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "1"));
    // The tarpit let its client go at once (it would hold it for a minute).
    EXPECT_TRUE(weir_->wait_for_stdout(R"( CT .*"GET /tarpit HTTP/1.1")", 5000))
        << weir_->stdout_text();
    reset_connection(*holder);
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "0"));
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
  }
  // A WebSocket tunnel: the connection counts while it is open.
  {
    auto tunnel = connect_from(port_);
    ASSERT_TRUE(tunnel->send_raw(
        "GET /chat HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    auto r = tunnel->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 101);
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "4"));
    tunnel->close();
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
    ASSERT_TRUE(becomes("reqs", ip, "conn_cur", "0"));
  }
  // The keep-alive clients still work, then leave.
  serve_and_close(kept);
  expect_all_ended("conns", ip, 11);
  // 6 + 3 requests of the keep-alive clients, the held one, the cut body,
  // /broken, the three of the queue and the tarpit, the tunnel.
  expect_all_ended("reqs", ip, 16);
  EXPECT_EQ(show("reqs").at(ip, "http_req_cnt"), "16");
}

// Many clients at once on both threads of the worker: every track ends.
TEST_F(StickTables, ConnCurReturnsToZeroAfterABurstOfConcurrentClients) {
  OriginServer app("app");
  app.set_default_delay_ms(20);  // so that the requests overlap
  ScriptServer unused(closes_mid_response());
  ScriptServer ws(websocket_echo());
  ASSERT_TRUE(start(kHttpConnCur, {{"@APP@", app.address()},
                                   {"@BROKEN@", unused.address()},
                                   {"@WS@", ws.address()},
                                   {"@CLOSED@", std::to_string(free_tcp_port())}}));
  constexpr size_t kClients = 200;
  SwarmOptions o;
  o.request = "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
  ClientSwarm swarm(port_, kClients, o);
  ASSERT_TRUE(swarm.wait_finished(60000));
  size_t ok = 0;
  for (const SwarmResult& r : swarm.results()) ok += r.status() == 200 ? 1 : 0;
  EXPECT_EQ(ok, kClients);
  expect_all_ended("conns", "127.0.0.1", kClients);
  expect_all_ended("reqs", "127.0.0.1", kClients);
  EXPECT_EQ(show("conns").at("127.0.0.1", "http_req_cnt"), std::to_string(kClients));
}

// ---------------------------------------------------------------------------
// conn_cur in tcp mode: connection and content tracks; two frontends share the
// table (the second one's backend closes in the middle of its answer); a
// refused server retried on the other; clients reset while the server holds
// them or before sending a byte.

constexpr const char* kTcpConnCur = R"y(stick_tables:
  conns:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt, sess_cnt]
  content:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt, sess_cnt]
frontends:
  db:
    mode: tcp
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    tcp_request:
      - connection: {track: conns}
      - content: {track: {table: content, counter: 1}}
  cut:
    mode: tcp
    bind: ["127.0.0.1:@PORT2@"]
    default_backend: broken
    tcp_request:
      - connection: {track: conns}
backends:
  app:
    mode: tcp
    retries: 3
    servers: {refused: "127.0.0.1:@CLOSED@", ok: "@APP@"}
  broken:
    mode: tcp
    servers: {b1: "@BROKEN@"}
)y";

TEST_F(StickTables, ConnCurIsExactInTcpModeThroughResetsRetriesAndServerFaults) {
  OriginServer app("app");
  ScriptServer broken(closes_mid_response());
  const uint16_t port2 = free_tcp_port();
  ASSERT_TRUE(start(kTcpConnCur, {{"@APP@", app.address()},
                                  {"@BROKEN@", broken.address()},
                                  {"@PORT2@", std::to_string(port2)},
                                  {"@CLOSED@", std::to_string(free_tcp_port())}}));
  const std::string ip = "127.0.0.1";
  TableView t;
  std::vector<std::unique_ptr<HttpClient>> kept;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(connect_from(port_));
    auto r = kept.back()->request("GET", "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_TRUE(wait_field("conns", ip, "conn_cur", "3", &t)) << t.text;
  EXPECT_EQ(t.at(ip, "use"), "3") << t.text;
  EXPECT_EQ(t.at(ip, "sess_cnt"), "3") << t.text;
  ASSERT_TRUE(becomes("content", ip, "conn_cur", "3"));

  // Resets: one while the server holds its request, one before any byte.
  {
    auto held = connect_from(port_);
    ASSERT_TRUE(held->send_raw("GET /?blackhole=1 HTTP/1.1\r\nHost: test\r\n\r\n"));
    auto silent = connect_from(port_);
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "5"));
    ASSERT_TRUE(app.wait_for_requests(4, 5000));
    reset_connection(*held);
    reset_connection(*silent);
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
    ASSERT_TRUE(becomes("content", ip, "conn_cur", "3"));
  }
  // The server closes in the middle of its answer: the client reads the end
  // of the stream (a half-close: the connection lasts until the client closes
  // its side too).
  {
    auto cut = connect_from(port2);
    ASSERT_TRUE(cut->send_raw("GET / HTTP/1.1\r\nHost: test\r\n\r\n"));
    EXPECT_FALSE(cut->read_response(5000));
    EXPECT_TRUE(cut->wait_closed(5000));
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "4"));
    cut->close();
    ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
  }
  serve_and_close(kept);
  expect_all_ended("conns", ip, 6);
  expect_all_ended("content", ip, 5);
  // At least one of the three kept connections met the refused server first
  // (round robin; tcp sessions are logged when they end).
  EXPECT_TRUE(weir_->wait_for_stdout(R"(db app/ok \S+ \d+ \d+ -- \d+/\d+/\d+/\d+/[1-9] )", 5000))
      << "no connection was retried:\n"
      << weir_->stdout_text();
}

// ---------------------------------------------------------------------------
// The runtime API on a table with traffic: the list, entries, filters, keys,
// entries made and changed by `set table`, every kind of mistake, /metrics and
// the stats page.

constexpr const char* kApiConfig = R"y(stick_tables:
  clients:
    type: ip
    size: 1k
    expire: 10m
    store: [http_req_cnt, "http_req_rate(10s)", gpc0]
  users:
    type: string
    size: 100
    expire: 2s
    store: [http_req_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    metrics: {uri: /metrics}
    stats: /stats
    http_request:
      - track: clients
      - track: {table: users, key: "hdr(x-user)", counter: 1}
      - set_header: {name: X-Gpc0, value: "%[src_gpc0(clients)]"}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickTables, RuntimeApiShowsFiltersSetsAndExplainsMistakes) {
  OriginServer app("app");
  ASSERT_TRUE(start(kApiConfig, {{"@APP@", app.address()}}));
  const std::vector<std::pair<std::string, int>> traffic = {
      {"127.0.0.1", 3}, {"127.0.0.2", 1}, {"127.0.0.3", 2}};
  for (const auto& [source, n] : traffic)
    for (int i = 0; i < n; ++i) ASSERT_EQ(status_of("/", {{"X-User", "alice"}}, source), 200);

  // Every table, one line each.
  CommandResult list = weirctl({"-s", admin(), "show", "table"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_EQ(count_matching_lines(list.out, "^# table: "), 2u) << list.out;
  EXPECT_NE(list.out.find("# table: clients, type: ip, size: 1024, used: 3, evicted: 0, "
                          "expired: 0, refused: 0\n"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("# table: users, type: string, size: 100, used: 1,"), std::string::npos)
      << list.out;

  TableView t = show("clients");
  ASSERT_EQ(t.entries.size(), 3u) << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "http_req_cnt"), "3") << t.text;
  EXPECT_EQ(t.at("127.0.0.1", "use"), "0") << t.text;
  const int64_t exp = std::strtoll(t.at("127.0.0.1", "exp").c_str(), nullptr, 10);
  EXPECT_GT(exp, 0);
  EXPECT_LE(exp, 600000);
  EXPECT_EQ(t.at("127.0.0.3", "gpc(0)"), "0") << t.text;
  EXPECT_TRUE(t.entries.at("127.0.0.3").count("http_req_rate(10000)")) << t.text;

  auto keys = [&](const std::string& command) {
    std::string out;
    for (const auto& [key, fields] : parse_table(api(command)).entries) out += key + " ";
    return out;
  };
  EXPECT_EQ(keys("show table clients data.http_req_cnt gt 1"), "127.0.0.1 127.0.0.3 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt eq 1"), "127.0.0.2 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt ne 1"), "127.0.0.1 127.0.0.3 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt le 2"), "127.0.0.2 127.0.0.3 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt ge 2 data.http_req_cnt lt 3"), "127.0.0.3 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt gt 1 key 127.0.0.3"), "127.0.0.3 ");
  EXPECT_EQ(keys("show table clients data.http_req_cnt gt 5 key 127.0.0.3"), "");
  EXPECT_EQ(keys("show table clients key 127.0.0.2"), "127.0.0.2 ");
  t = show("clients key 127.0.0.9");
  EXPECT_TRUE(t.entries.empty()) << t.text;
  EXPECT_EQ(t.table["table"], "clients") << t.text;

  // set table makes an entry or changes one; a rule reads what it set.
  EXPECT_EQ(api("set table clients key 10.1.2.3 data.gpc0 7 data.http_req_cnt 100"), "\n");
  t = show("clients key 10.1.2.3");
  EXPECT_EQ(t.at("10.1.2.3", "gpc(0)"), "7") << t.text;
  EXPECT_EQ(t.at("10.1.2.3", "http_req_cnt"), "100") << t.text;
  EXPECT_EQ(api("set table clients key 127.0.0.2 data.gpc(0) 5"), "\n");
  {
    HttpClient c(port_, "127.0.0.1", "127.0.0.2");
    auto r = c.request("GET", "/gpc");
    ASSERT_TRUE(r);
    ASSERT_TRUE(app.wait_for_requests(7, 5000));
    EXPECT_EQ(app.requests().back().header("X-Gpc0"), "5");
  }

  // Mistakes: what is wrong, with what would be right.
  auto error = [&](const std::string& command) {
    CommandResult r = weirctl({"-s", admin(), command});
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.out;
    EXPECT_EQ(r.out.rfind("Error: ", 0), 0u) << command << ": " << r.out;
    return r.out;
  };
  EXPECT_NE(error("show table nope").find("no stick table named 'nope' (known: clients, users)"),
            std::string::npos);
  EXPECT_NE(error("clear table nope").find("known: clients, users"), std::string::npos);
  EXPECT_NE(error("show table clients data.bytes_out_cnt gt 0")
                .find("table 'clients' does not store bytes_out_cnt"),
            std::string::npos);
  EXPECT_NE(error("set table clients key 127.0.0.1 data.gpt0 1").find("does not store gpt(0)"),
            std::string::npos);
  EXPECT_NE(error("show table clients key not-an-ip").find("not a key of an ip table"),
            std::string::npos);
  EXPECT_NE(error("show table clients data.frob gt 1").find("unknown data 'frob'"),
            std::string::npos);
  EXPECT_NE(error("show table clients data.gpc0 about 1").find("unknown operator 'about'"),
            std::string::npos);
  EXPECT_NE(error("show table clients data.gpc0 gt many").find("'many' is not a number"),
            std::string::npos);
  EXPECT_NE(error("set table clients key 127.0.0.1").find("usage: set table"), std::string::npos);
  EXPECT_NE(error("set table clients key 127.0.0.1 data.gpc0 x").find("is not a number"),
            std::string::npos);
  EXPECT_NE(error("clear table clients key 127.0.0.1 data.gpc0 eq 0").find("not both"),
            std::string::npos);
  EXPECT_NE(error("clear table").find("a table name is needed"), std::string::npos);
  // Nothing changed meanwhile.
  EXPECT_EQ(show("clients").entries.size(), 4u);

  // /metrics and the stats page count the same entries.
  auto m = http_get(port_, "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_entries{table="clients"})"), "4") << m->body;
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_size{table="clients"})"), "1024");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_evicted_total{table="clients"})"), "0");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_refused_total{table="clients"})"), "0");
  auto page = http_get(port_, "/stats");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("<table class=\"proxy stick-tables\">"), std::string::npos);
  EXPECT_NE(page->body.find("<tr class=\"stick-table\"><td>clients</td><td>ip</td><td>1024</td>"
                            "<td>4</td><td>0</td><td>0</td><td>0</td></tr>"),
            std::string::npos)
      << page->body;
  EXPECT_NE(page->body.find("<tr class=\"stick-table\"><td>users</td><td>string</td>"),
            std::string::npos);
}

TEST_F(StickTables, EntriesNobodyRefreshesExpireFromShowTableAndAreCounted) {
  OriginServer app("app");
  ASSERT_TRUE(start(kApiConfig, {{"@APP@", app.address()}}));
  ASSERT_EQ(status_of("/", {{"X-User", "alice"}}), 200);
  ASSERT_EQ(status_of("/", {{"X-User", "bob"}}), 200);
  TableView t = show("users");
  EXPECT_TRUE(t.has("alice") && t.has("bob")) << t.text;
  const int64_t exp = std::strtoll(t.at("alice", "exp").c_str(), nullptr, 10);
  EXPECT_GT(exp, 0) << t.text;
  EXPECT_LE(exp, 2000) << t.text;
  ASSERT_TRUE(wait_table(
      "users", [](const TableView& v) { return v.entries.empty() && v.info("used") == "0"; }, &t,
      15000))
      << t.text;
  EXPECT_EQ(t.table["expired"], "2") << t.text;
  auto m = http_get(port_, "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_expired_total{table="users"})"), "2");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_entries{table="users"})"), "0");
  // The clients table (10 minutes) kept its entry.
  EXPECT_TRUE(show("clients").has("127.0.0.1"));
}

// ---------------------------------------------------------------------------
// A full table: the least recently used entry goes for a new key (counted as
// evicted); entries that connections track never go, and a new key is refused
// tracking (counted) while its connection is served.

constexpr const char* kLruConfig = R"y(stick_tables:
  by_user:
    type: string
    size: 3
    store: [http_req_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    metrics: {uri: /metrics}
    http_request:
      - track: {table: by_user, key: "hdr(x-user)"}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickTables, AFullTableEvictsItsLeastRecentlyUsedEntry) {
  OriginServer app("app");
  ASSERT_TRUE(start(kLruConfig, {{"@APP@", app.address()}}));
  // Entries are ordered by the millisecond of their last use: a few between
  // the requests keep the order unambiguous.
  auto use = [&](const std::string& user) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(status_of("/", {{"X-User", user}}), 200) << user;
  };
  for (const char* u : {"u1", "u2", "u3", "u1"}) use(u);
  TableView t = show("by_user");
  EXPECT_EQ(t.entries.size(), 3u) << t.text;
  use("u4");  // u2 is the least recently used
  t = show("by_user");
  EXPECT_FALSE(t.has("u2")) << t.text;
  EXPECT_TRUE(t.has("u1") && t.has("u3") && t.has("u4")) << t.text;
  EXPECT_EQ(t.at("u1", "http_req_cnt"), "2") << t.text;
  EXPECT_EQ(t.table["used"], "3") << t.text;
  EXPECT_EQ(t.table["evicted"], "1") << t.text;
  use("u5");  // then u3
  use("u2");  // then u1: u2 starts again from nothing
  t = show("by_user");
  EXPECT_EQ(t.entries.size(), 3u) << t.text;
  EXPECT_TRUE(t.has("u4") && t.has("u5") && t.has("u2")) << t.text;
  EXPECT_EQ(t.at("u2", "http_req_cnt"), "1") << t.text;
  EXPECT_EQ(t.table["evicted"], "3") << t.text;
  auto m = http_get(port_, "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_evicted_total{table="by_user"})"), "3");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_entries{table="by_user"})"), "3");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_refused_total{table="by_user"})"), "0");
}

constexpr const char* kTrackedConfig = R"y(stick_tables:
  conns:
    type: ip
    size: 3
    store: [conn_cur, conn_cnt]
frontends:
  db:
    mode: tcp
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    tcp_request:
      - connection: {track: conns}
  monitor:
    bind: ["127.0.0.1:@PORT2@"]
    metrics: {uri: /metrics}
    default_backend: web
backends:
  app:
    mode: tcp
    servers: {a1: "@APP@"}
  web:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickTables, EntriesTrackedByOpenConnectionsAreNeverEvicted) {
  OriginServer app("app");
  const uint16_t port2 = free_tcp_port();
  ASSERT_TRUE(
      start(kTrackedConfig, {{"@APP@", app.address()}, {"@PORT2@", std::to_string(port2)}}));
  std::vector<std::unique_ptr<HttpClient>> kept;
  for (const char* source : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    kept.push_back(connect_from(port_, source));
    auto r = kept.back()->request("GET", "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  TableView t;
  ASSERT_TRUE(wait_table(
      "conns",
      [](const TableView& v) {
        return v.entries.size() == 3 && v.at("127.0.0.1", "use") == "1" &&
               v.at("127.0.0.2", "use") == "1" && v.at("127.0.0.3", "use") == "1";
      },
      &t))
      << t.text;
  // A fourth address finds the table full of tracked entries: it is not
  // tracked, and served all the same.
  {
    auto fourth = connect_from(port_, "127.0.0.4");
    auto r = fourth->request("GET", "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    t = show("conns");
    EXPECT_FALSE(t.has("127.0.0.4")) << t.text;
    EXPECT_EQ(t.table["refused"], "1") << t.text;
    EXPECT_EQ(t.table["evicted"], "0") << t.text;
  }
  // Tracked entries cannot be cleared either.
  EXPECT_EQ(weirctl({"-s", admin(), "clear table conns"}).out, "0 entries removed\n");
  EXPECT_EQ(show("conns").entries.size(), 3u);
  auto m = http_get(port2, "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_refused_total{table="conns"})"), "1");
  EXPECT_EQ(metric(m->body, R"(weir_stick_table_entries{table="conns"})"), "3");

  // Once 127.0.0.1 has left, its entry is the one a new address takes.
  kept[0]->close();
  ASSERT_TRUE(becomes("conns", "127.0.0.1", "use", "0"));
  auto fifth = connect_from(port_, "127.0.0.4");
  auto r = fifth->request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(wait_field("conns", "127.0.0.4", "use", "1", &t)) << t.text;
  EXPECT_FALSE(t.has("127.0.0.1")) << t.text;
  EXPECT_EQ(t.table["evicted"], "1") << t.text;
  EXPECT_EQ(t.at("127.0.0.2", "conn_cur"), "1") << t.text;
  EXPECT_EQ(t.at("127.0.0.3", "conn_cur"), "1") << t.text;
}

// ---------------------------------------------------------------------------
// Keys of every type through real rules: IPv4 and IPv6 clients in an ipv6
// table (IPv4 as ::ffff:a.b.c.d) and in an ip table (IPv6 clients are not
// tracked there), integers from a header (text that is no number is not
// tracked), strings cut at key_size (after a converter), binary keys shown in
// hexadecimal. A response header reads the counter of each track.

constexpr const char* kKeysConfig = R"y(stick_tables:
  v4:
    type: ip
    size: 100
    store: [http_req_cnt]
  v6:
    type: ipv6
    size: 100
    store: [http_req_cnt]
  ids:
    type: integer
    size: 100
    store: [http_req_cnt]
  names:
    type: string
    key_size: 8
    size: 100
    store: [http_req_cnt]
  blobs:
    type: binary
    key_size: 4
    size: 100
    store: [http_req_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@", "[::1]:@PORT@"]
    default_backend: app
    http_request:
      - track: {table: v4, counter: 0}
      - track: {table: v6, counter: 1}
      - track: {table: ids, key: "hdr(x-id)", counter: 2}
        if: "{ hdr(x-id) -m found }"
      - track: {table: names, key: "hdr(x-name),lower", counter: 2}
        if: "{ hdr(x-name) -m found }"
      - track: {table: blobs, key: "hdr(x-blob)", counter: 2}
        if: "{ hdr(x-blob) -m found }"
    http_response:
      - set_header: {name: X-Counts, value: "%[sc0_http_req_cnt]/%[sc1_http_req_cnt]/%[sc2_http_req_cnt]"}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(StickTables, KeysOfEveryTypeFromRealRules) {
  OriginServer app("app");
  ASSERT_TRUE(start(kKeysConfig, {{"@APP@", app.address()}}));
  auto counts = [&](const Headers& h) {
    HttpClient c(port_);
    auto r = c.request("GET", "/", h);
    return r && r->status == 200 ? r->header("X-Counts") : "<no response>";
  };
  // IPv6 with curl.
  auto curl6 = [&] {
    return run_command({"curl", "-s", "-g", "-D", "-", "-o", "/dev/null", "--max-time", "10",
                        "http://[::1]:" + std::to_string(port_) + "/"})
        .out;
  };
  EXPECT_NE(curl6().find("X-Counts: /1/\r\n"), std::string::npos);
  EXPECT_NE(curl6().find("X-Counts: /2/\r\n"), std::string::npos);
  TableView t = show("v6");
  EXPECT_EQ(t.at("::1", "http_req_cnt"), "2") << t.text;
  EXPECT_EQ(show("v4").entries.size(), 0u);
  EXPECT_EQ(parse_table(api("show table v6 key ::1")).entries.size(), 1u);

  EXPECT_EQ(counts({{"X-Id", "42"}}), "1/1/1");
  EXPECT_EQ(counts({{"X-Id", "42"}}), "2/2/2");
  EXPECT_EQ(counts({{"X-Id", "-7"}}), "3/3/1");
  EXPECT_EQ(counts({{"X-Id", "9223372036854775807"}}), "4/4/1");
  EXPECT_EQ(counts({{"X-Id", "forty-two"}}), "5/5/");
  EXPECT_EQ(counts({{"X-Id", "9223372036854775808"}}), "6/6/");
  t = show("ids");
  EXPECT_EQ(t.entries.size(), 3u) << t.text;
  EXPECT_EQ(t.at("42", "http_req_cnt"), "2") << t.text;
  EXPECT_EQ(t.at("-7", "http_req_cnt"), "1") << t.text;
  EXPECT_EQ(t.at("9223372036854775807", "http_req_cnt"), "1") << t.text;
  EXPECT_EQ(parse_table(api("show table ids key -7")).entries.size(), 1u);
  t = show("v4");
  EXPECT_EQ(t.at("127.0.0.1", "http_req_cnt"), "6") << t.text;
  t = show("v6");
  EXPECT_EQ(t.at("::ffff:127.0.0.1", "http_req_cnt"), "6") << t.text;

  // Strings: lower-cased, then cut at 8 bytes.
  EXPECT_EQ(counts({{"X-Name", "Alexandria-the-long"}}), "7/7/1");
  EXPECT_EQ(counts({{"X-Name", "ALEXANDRA"}}), "8/8/2");
  EXPECT_EQ(counts({{"X-Name", "bob"}}), "9/9/1");
  t = show("names");
  EXPECT_EQ(t.entries.size(), 2u) << t.text;
  EXPECT_EQ(t.at("alexandr", "http_req_cnt"), "2") << t.text;
  EXPECT_EQ(parse_table(api("show table names key alexandria-and-more")).at("alexandr", "key"),
            "alexandr");

  // Binary: the header's bytes, cut at 4, shown and looked up in hexadecimal.
  EXPECT_EQ(counts({{"X-Blob", "abcdef"}}), "10/10/1");
  EXPECT_EQ(counts({{"X-Blob", "abcdXYZ"}}), "11/11/2");
  t = show("blobs");
  EXPECT_EQ(t.entries.size(), 1u) << t.text;
  EXPECT_EQ(t.at("61626364", "http_req_cnt"), "2") << t.text;
  EXPECT_EQ(parse_table(api("show table blobs key 6162636465")).entries.size(), 1u);
  CommandResult bad = weirctl({"-s", admin(), "show table blobs key abc"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_EQ(api("set table blobs key 00ff data.http_req_cnt 9"), "\n");
  EXPECT_EQ(show("blobs").at("00ff", "http_req_cnt"), "9");
}

}  // namespace
}  // namespace weir::test::sticky
