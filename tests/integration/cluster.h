#pragma once
// Three real weir nodes in one cluster (doc/peers.md): a, b and c, whose
// peers agents listen on 127.0.0.2, .3 and .4, each with its own CURVE key
// from `weirctl peers keygen`, and a Relay between every ordered pair, so
// that a test can cut, heal or slow any link. Node X's configuration lists
// node Y at the relay X->Y, which forwards to Y's agent.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/stick_tables.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/relay.h"
#include "tests/support/util.h"

namespace weir::test::cluster {

using sticky::Headers;
using sticky::parse_table;
using sticky::replace_all;
using sticky::TableView;

inline const std::array<std::string, 3> kNodes = {"a", "b", "c"};

// The body after each node's global and peers sections: a synchronised
// string table keyed on X-Key that counts requests and keeps a tag.
constexpr const char* kTables = R"y(stick_tables:
  st:
    type: string
    size: 100k
    expire: @EXPIRE@
    store: [http_req_cnt, gpt0, server_key]
    sync: true
  mine:
    type: string
    size: 1k
    store: [http_req_cnt]
frontends:
  web:
    bind: ["@IP@:@PORT@"]
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    metrics: {uri: /metrics}
    http_request:
      - track: {table: st, key: "req.hdr(x-key)"}
      - track: {table: mine, key: "req.hdr(x-key)", counter: 1}
backends:
  app:
    stick: {match: "req.hdr(x-user)", store: "req.hdr(x-user)", table: st}
    servers: {s1: "@APP@", s2: "@APP@"}
)y";

class Cluster : public ::testing::Test {
 protected:
  struct Node {
    std::string name;
    std::string ip;          // where its agent and its frontend listen
    uint16_t peer_port = 0;  // its agent
    uint16_t http_port = 0;  // its frontend
    std::string dir;
    std::unique_ptr<WeirProcess> weir;
    std::string public_key;
    std::string admin() const { return dir + "/admin.sock"; }
  };

  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    for (size_t i = 0; i < kNodes.size(); ++i) {
      Node& n = nodes_[kNodes[i]];
      n.name = kNodes[i];
      n.ip = "127.0.0." + std::to_string(i + 2);
      n.peer_port = free_tcp_port();
      n.http_port = free_tcp_port();
      n.dir = dir_ + "/" + n.name;
      ::mkdir(n.dir.c_str(), 0755);
      n.public_key = keygen(n.dir + "/node.key");
    }
    for (const auto& [from, a] : nodes_) {
      for (const auto& [to, b] : nodes_) {
        if (from != to) relays_[from + to] = std::make_unique<Relay>(b.ip, b.peer_port);
      }
    }
  }
  void TearDown() override {
    for (auto& [name, n] : nodes_) n.weir.reset();
    relays_.clear();
    if (!dir_.empty()) remove_tree(dir_);
  }

  // A new key pair in `path` (what an operator does once per node); the public key.
  static std::string keygen(const std::string& path) {
    CommandResult r = weirctl({"peers", "keygen", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string out = r.out;
    const size_t q = out.find('"');
    return q == std::string::npos ? std::string() : out.substr(q + 1, 40);
  }

  Node& node(const std::string& name) { return nodes_.at(name); }
  Relay& relay(const std::string& from, const std::string& to) { return *relays_.at(from + to); }
  // Both directions between two nodes.
  void cut(const std::string& x, const std::string& y) {
    relay(x, y).cut();
    relay(y, x).cut();
  }
  void heal(const std::string& x, const std::string& y) {
    relay(x, y).heal();
    relay(y, x).heal();
  }

  // Node `name`'s configuration: `peers_extra` replaces the peers section's
  // cluster line when set (another cluster), `tables` the body.
  std::string config(const std::string& name, const std::string& cluster = "test",
                     const std::string& tables = kTables) {
    const Node& self = nodes_.at(name);
    std::string y =
        "global:\n  threads: 2\n  log: [{target: stdout, format: text}]\n"
        "  runtime_api:\n    - {address: " +
        self.admin() + ", level: admin}\n" + (state_dir_ ? "  state_dir: " + self.dir + "\n" : "") +
        "peers:\n  cluster: " + cluster + "\n  local: " + name + "\n  bind: \"" + self.ip + ":" +
        std::to_string(self.peer_port) + "\"\n  secret_key_file: " + self.dir + "/node.key\n" +
        peers_extra_ + "  nodes:\n";
    for (const auto& [other, n] : nodes_) {
      const std::string address = other == name ? self.ip + ":" + std::to_string(self.peer_port)
                                                : relay(name, other).address();
      y += "    " + other + ": {address: \"" + address + "\", public_key: \"" + n.public_key +
           "\"}\n";
    }
    return y + replace_all(tables, {{"@IP@", self.ip},
                                    {"@PORT@", std::to_string(self.http_port)},
                                    {"@APP@", origin_.address()},
                                    {"@EXPIRE@", expire_}});
  }

  ::testing::AssertionResult start(const std::string& name, const std::string& cluster = "test",
                                   const std::string& tables = kTables) {
    Node& n = nodes_.at(name);
    n.weir = WeirProcess::start(config(name, cluster, tables));
    if (!n.weir) return ::testing::AssertionFailure() << "node " << name << " did not start";
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult start_all() {
    for (const std::string& n : kNodes) {
      auto r = start(n);
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  // Until every node says every other one is up both ways.
  bool wait_mesh(int timeout_ms = 20000) {
    return wait_until(
        [&] {
          for (auto& [name, n] : nodes_) {
            if (!n.weir) continue;
            const std::string p = api(name, "show peers");
            for (auto& [other, m] : nodes_) {
              if (other == name || !m.weir) continue;
              if (p.find("\n" + other + " ") == std::string::npos) return false;
              const size_t at = p.find("\n" + other + " ");
              const std::string line = p.substr(at + 1, p.find('\n', at + 1) - at - 1);
              if (line.find(" up up ") == std::string::npos) return false;
            }
          }
          return true;
        },
        timeout_ms, 50);
  }

  std::string api(const std::string& name, const std::string& command) {
    return unix_command(nodes_.at(name).admin(), command);
  }
  TableView show(const std::string& name, const std::string& table = "st") {
    return parse_table(api(name, "show table " + table));
  }
  // Waits until pred(show table st) holds on node `name`.
  ::testing::AssertionResult wait_table(const std::string& name,
                                        const std::function<bool(const TableView&)>& pred,
                                        const std::string& what, int timeout_ms = 20000) {
    TableView last;
    if (wait_until(
            [&] {
              last = show(name);
              return pred(last);
            },
            timeout_ms, 50)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "node " << name << " never had " << what << ":\n"
                                         << tail_lines(last.text, 20);
  }
  // The three nodes meshed, `key` written on a and held by c, then c stopped:
  // the start of the tests of a node that comes back.
  ::testing::AssertionResult c_stopped_holding(const std::string& key) {
    if (!start_all()) return ::testing::AssertionFailure() << "the nodes did not start";
    if (!wait_mesh()) return ::testing::AssertionFailure() << "no full mesh";
    if (request("a", key) != 200) return ::testing::AssertionFailure() << "a refused " << key;
    const auto held = wait_table(
        "c", [&](const TableView& v) { return v.has(key); }, key);
    if (!held) return held;
    return stop_node("c");
  }
  // Stops node `name` (SIGTERM) and waits until it has exited.
  ::testing::AssertionResult stop_node(const std::string& name) {
    node(name).weir->signal(SIGTERM);
    if (!node(name).weir->wait_exit(20000)) {
      return ::testing::AssertionFailure() << "node " << name << " did not exit";
    }
    node(name).weir.reset();
    return ::testing::AssertionSuccess();
  }
  // One request to node `name` with X-Key (and X-User when given): the status.
  int request(const std::string& name, const std::string& key, const std::string& user = "") {
    try {
      const Node& n = nodes_.at(name);
      HttpClient c(n.http_port, n.ip);
      Headers h = {{"X-Key", key}, {"Connection", "close"}};
      if (!user.empty()) h.emplace_back("X-User", user);
      auto r = c.request("GET", "/", h);
      return r ? r->status : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }

  std::string dir_;
  std::string expire_ = "10m";
  bool state_dir_ = false;   // each node keeps its tables in its directory
  std::string peers_extra_;  // more lines of the peers section ("  dead_after: 2s\n")
  OriginServer origin_{"app"};
  std::map<std::string, Node> nodes_;
  std::map<std::string, std::unique_ptr<Relay>> relays_;
};

}  // namespace weir::test::cluster
