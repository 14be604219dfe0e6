// An http connection's per-request state (variables, rule captures, header
// captures, log samples, the local address, the client's address as text) comes
// from a per-thread free list and is recycled across requests and across client
// connections (issue 16, step 2). With one worker thread and one connection at a
// time every request below runs in the same recycled block; each request's
// expected log line and backend headers depend on that request alone, so
// anything one request, or one client, leaves behind shows up in the next.

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

// What a request does, and therefore what it must leave in the log and at
// the server.
enum class Kind {
  kProxied,  // GET /rN, to the server
  kLocal,    // GET /local?n=N, answered by a `return` rule; weir closes
  kBad,      // a head weir cannot parse: 400, <BADREQ>; weir closes
};

struct Req {
  Kind kind;
  std::string id;  // the X-Id header's value; empty: no X-Id
};

// One client connection: to which port, from which address, its requests in order.
struct Visit {
  bool port_b;
  std::string source;
  std::vector<Req> reqs;
};

// Every field is key=value; %r comes last because it holds spaces.
const char* const kLogFormat =
    "ci=%ci cp=%cp dport=%[dst_port] st=%ST ts=%ts cap=%hr{X-Id} rc=%hr hdr=%[hdr(x-id)] "
    "var=%[var(txn.id)] srv=%[res_hdr(x-server)] r=%r";

std::map<std::string, std::string> fields_of(const std::string& line) {
  std::map<std::string, std::string> out;
  size_t r = line.find(" r=");
  if (r != std::string::npos) out["r"] = line.substr(r + 3);
  size_t pos = 0;
  while (pos < r && pos < line.size()) {
    size_t sp = line.find(' ', pos);
    std::string tok = line.substr(pos, sp - pos);
    size_t eq = tok.find('=');
    if (eq != std::string::npos) out[tok.substr(0, eq)] = tok.substr(eq + 1);
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  return out;
}

class RequestStateReuse : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    port_a_ = free_tcp_port();
    do {
      port_b_ = free_tcp_port();
    } while (port_b_ == port_a_);
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }

  bool start() {
    const std::string yaml = "global:\n  threads: 1\n  log: [{target: stdout, format: '" +
                             std::string(kLogFormat) + "'}]\n  runtime_api: {address: " + admin() +
                             R"y(, level: user}
frontends:
  fe:
    bind: ["127.0.0.1:)y" + std::to_string(port_a_) +
                             "\", \"127.0.0.1:" + std::to_string(port_b_) + R"y("]
    default_backend: be
    http_request:
      - set_var: {name: txn.id, value: "%[hdr(x-id)]"}
        if: "{ hdr(x-id) -m found }"
      - capture: "%[hdr(x-id)]"
        if: "{ hdr(x-id) -m found }"
      - return: {status: 200, body: "local\n"}
        if: "{ path /local }"
      - set_header: {name: X-Seen-Id, value: "%[var(txn.id)]"}
      - set_header: {name: X-Seen-Port, value: "%[dst_port]"}
      - set_header: {name: X-Seen-Src, value: "%[src]"}
backends:
  be:
    servers: {s1: ")y" + origin_.address() +
                             "\"}\n";
    weir_ = WeirProcess::start(yaml);
    return weir_ != nullptr;
  }
  std::string admin() const { return dir_ + "/admin.sock"; }

  // No client connection is left: the last one's request block is back on the
  // free list, where the next connection takes it.
  bool all_closed() {
    return wait_until(
        [&] {
          for (auto& row : parse_stat_csv(unix_command(admin(), "show stat")))
            if (row["pxname"] == "fe" && row["svname"] == "FRONTEND") return row["scur"] == "0";
          return false;
        },
        10000, 50);
  }

  // The access-log lines of the connection from ci:cp, once there are n.
  std::vector<std::string> lines_of(const std::string& ci, uint16_t cp, size_t n) {
    const std::string key = "ci=" + ci + " cp=" + std::to_string(cp) + " ";
    std::vector<std::string> found;
    wait_until(
        [&] {
          found.clear();
          std::string text = weir_->stdout_text();
          for (size_t pos = 0; pos < text.size();) {
            size_t nl = text.find('\n', pos);
            if (nl == std::string::npos) break;
            std::string line = text.substr(pos, nl - pos);
            if (line.rfind(key, 0) == 0) found.push_back(line);
            pos = nl + 1;
          }
          return found.size() >= n;
        },
        5000);
    return found;
  }

  // Runs the visits one connection at a time, and checks that each request's
  // log line and (when proxied) the headers the server got are its own.
  void run(const std::vector<Visit>& visits) {
    int n = 0;
    struct Sent {
      std::string target, id, src;
      uint16_t port;
    };
    std::vector<Sent> proxied;
    for (const Visit& v : visits) {
      const uint16_t port = v.port_b ? port_b_ : port_a_;
      const std::string where = std::string(v.port_b ? "B" : "A") + " from " + v.source;
      HttpClient c(port, "127.0.0.1", v.source);
      const uint16_t cp = c.local_port();
      std::vector<std::string> targets;
      for (const Req& q : v.reqs) {
        const std::string target =
            q.kind == Kind::kLocal ? "/local?n=" + std::to_string(++n) : "/r" + std::to_string(++n);
        targets.push_back(target);
        std::optional<HttpResponse> r;
        if (q.kind == Kind::kBad) {
          ASSERT_TRUE(
              c.send_raw("GET " + target + " HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n"));
          r = c.read_response();
        } else {
          std::vector<std::pair<std::string, std::string>> h;
          if (!q.id.empty()) h.emplace_back("X-Id", q.id);
          r = c.request("GET", target, h);
        }
        ASSERT_TRUE(r) << target << " on " << where;
        EXPECT_EQ(r->status, q.kind == Kind::kBad ? 400 : 200) << target << " on " << where;
        if (q.kind == Kind::kProxied) proxied.push_back({target, q.id, v.source, port});
      }
      auto lines = lines_of(v.source, cp, v.reqs.size());
      ASSERT_EQ(lines.size(), v.reqs.size()) << where << "\n" << weir_->stdout_text();
      for (size_t i = 0; i < v.reqs.size(); ++i) {
        const Req& q = v.reqs[i];
        const bool parsed = q.kind != Kind::kBad;
        const std::string id = parsed && !q.id.empty() ? q.id : "-";
        auto f = fields_of(lines[i]);
        SCOPED_TRACE(where + ": " + lines[i]);
        EXPECT_EQ(f["r"], parsed ? "GET " + targets[i] + " HTTP/1.1" : "<BADREQ>");
        EXPECT_EQ(f["dport"], std::to_string(port));  // local_addr_
        EXPECT_EQ(f["st"], parsed ? "200" : "400");
        EXPECT_EQ(f["ts"], q.kind == Kind::kProxied ? "--" : q.kind == Kind::kLocal ? "LR" : "PR");
        EXPECT_EQ(f["cap"], id);                                    // captures_
        EXPECT_EQ(f["rc"], id == "-" ? "-" : "{" + id + "}");       // rule_captures_
        EXPECT_EQ(f["hdr"], id);                                    // sample_values_, request
        EXPECT_EQ(f["var"], id);                                    // vars_
        EXPECT_EQ(f["srv"], q.kind == Kind::kProxied ? "o" : "-");  // sample_values_, response
      }
      // A local answer and a bad request close the connection; otherwise the
      // client ends it after its last request.
      if (v.reqs.back().kind != Kind::kProxied) {
        EXPECT_TRUE(c.wait_closed(5000)) << where;
      }
      c.close();
      ASSERT_TRUE(all_closed()) << "after " << where;
    }
    auto got = origin_.requests();
    ASSERT_EQ(got.size(), proxied.size());
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(got[i].head);
      EXPECT_EQ(got[i].target, proxied[i].target);
      EXPECT_EQ(got[i].header("X-Seen-Id"), proxied[i].id);
      EXPECT_EQ(got[i].header("X-Seen-Port"), std::to_string(proxied[i].port));
      EXPECT_EQ(got[i].header("X-Seen-Src"), proxied[i].src);
    }
  }

  std::string dir_;
  uint16_t port_a_ = 0, port_b_ = 0;
  OriginServer origin_{"o"};
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(RequestStateReuse, NothingOfOneRequestOrClientReachesTheNext) {
  ASSERT_TRUE(start());
  const std::string one = "127.0.0.1", two = "127.0.0.2";
  run({
      // On one connection: variables, captures and the response's samples of a
      // request are gone at the next; a local answer has no response sample.
      {false, one, {{Kind::kProxied, "id-1"}, {Kind::kProxied, ""}, {Kind::kLocal, ""}}},
      // Another port and client: neither the address it connected to nor the
      // client's address is the last connection's; a bad request, which never
      // reaches the captures, prints none of the previous request's.
      {true, two, {{Kind::kProxied, ""}, {Kind::kProxied, "id-2"}, {Kind::kBad, ""}}},
      {false, one, {{Kind::kProxied, "id-3"}}},
      // A connection whose first request is bad, after one that captured.
      {true, two, {{Kind::kBad, ""}}},
      {false, two, {{Kind::kLocal, "id-4"}}},
      {true, one, {{Kind::kProxied, "id-5"}, {Kind::kLocal, ""}}},
      {false, one, {{Kind::kProxied, ""}, {Kind::kBad, ""}}},
  });
}

}  // namespace
}  // namespace weir::test
