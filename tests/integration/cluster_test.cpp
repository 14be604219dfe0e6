// The peers cluster (doc/peers.md), as an operator runs it: three real weir
// nodes with their own keys, links through relays the tests cut and heal.
// Each test waits for an event (converged, refused, resynced) with a
// generous deadline and never asserts a duration: bench/peers.sh measures.

#include <sys/stat.h>

#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/cluster.h"
#include "tests/support/http_client.h"

namespace weir::test::cluster {
namespace {

int64_t field(const TableView& v, const std::string& key, const std::string& name) {
  const std::string s = v.at(key, name);
  return s.empty() || s[0] == '<' ? -1 : std::stoll(s);
}

TEST_F(Cluster, EntriesWrittenOnOneNodeReachEveryOther) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh()) << api("a", "show peers");
  // Counters from requests on two nodes add up everywhere; a stick entry
  // (server_key) and a tag written on one node are the same on all.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(request("a", "alice", "u1"), 200);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(request("b", "alice"), 200);
  ASSERT_TRUE(api("c", "set table st key tagged data.gpt0 7").find("rror") == std::string::npos);
  std::string server;
  for (const std::string& n : kNodes) {
    EXPECT_TRUE(wait_table(
        n, [](const TableView& v) { return field(v, "alice", "http_req_cnt") == 5; },
        "alice at 5 requests"));
    EXPECT_TRUE(wait_table(
        n, [](const TableView& v) { return v.at("tagged", "gpt(0)") == "7"; }, "tagged's gpt0"));
    EXPECT_TRUE(wait_table(
        n, [](const TableView& v) { return v.at("u1", "server_key").size() == 2; },
        "u1 stuck to a server"));
    const std::string s = show(n).at("u1", "server_key");
    if (server.empty()) server = s;
    EXPECT_EQ(s, server) << "node " << n;
    // The table that does not say sync: true stays on its node.
    EXPECT_EQ(show(n, "mine").has("alice"), n != "c") << "node " << n;
  }
  // u1 stays on its server whichever node it goes through.
  EXPECT_EQ(request("c", "x", "u1"), 200);
  EXPECT_EQ(show("c").at("u1", "server_key"), server);
  // show peers, /metrics and the stats page name the other nodes.
  const std::string peers = api("a", "show peers");
  EXPECT_NE(peers.find("cluster node: a"), std::string::npos) << peers;
  EXPECT_TRUE(std::regex_search(peers, std::regex("\nb \\S+ up up "))) << peers;
  HttpClient client(node("a").http_port, node("a").ip);
  auto metrics = client.request("GET", "/metrics", {{"X-Key", "metrics"}});
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("weir_peers_node_up{node=\"b\"} 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("weir_peers_node_up{node=\"c\"} 1"), std::string::npos);
}

TEST_F(Cluster, DeletesReachEveryNode) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  ASSERT_EQ(request("a", "gone"), 200);
  ASSERT_EQ(request("a", "kept"), 200);
  for (const std::string& n : kNodes) {
    ASSERT_TRUE(wait_table(
        n, [](const TableView& v) { return v.has("gone") && v.has("kept"); }, "both entries"));
  }
  api("b", "clear table st key gone");
  for (const std::string& n : kNodes) {
    EXPECT_TRUE(wait_table(
        n, [](const TableView& v) { return !v.has("gone") && v.has("kept"); },
        "gone deleted and kept kept"));
  }
}

TEST_F(Cluster, AnUnlistedKeyAnotherClusterAndAnotherKeyTypeAreRefusedAndLogged) {
  ASSERT_TRUE(start("a"));
  ASSERT_TRUE(start("b"));
  // c with a key nobody lists: a refuses it at the handshake and says who.
  const std::string listed = node("c").public_key;
  ::unlink((node("c").dir + "/node.key").c_str());
  node("c").public_key = keygen(node("c").dir + "/node.key");
  ASSERT_TRUE(start("c"));
  node("c").public_key = listed;  // what a's and b's configurations keep listing
  EXPECT_TRUE(node("a").weir->wait_for_stderr(
      "refused a connection from 127\\.0\\.0\\.1: its public key \\S+ is not listed", 20000))
      << node("a").weir->stdout_text();
  ASSERT_EQ(request("c", "from-c"), 200);
  ASSERT_EQ(request("a", "from-a"), 200);
  EXPECT_TRUE(wait_table(
      "b", [](const TableView& v) { return v.has("from-a"); }, "from-a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(show("a").has("from-c"));
  EXPECT_FALSE(show("c").has("from-a"));
  node("c").weir.reset();

  // c of another cluster, with a key a and b list (they reload to list it):
  // refused by name, and c hears why.
  ::unlink((node("c").dir + "/node.key").c_str());
  node("c").public_key = keygen(node("c").dir + "/node.key");
  for (const std::string n : {"a", "b"}) {
    node(n).weir->write_config(config(n));
    node(n).weir->signal(SIGHUP);
    ASSERT_TRUE(node(n).weir->wait_ready_count(2, 20000));
  }
  ASSERT_TRUE(start("c", "other"));
  EXPECT_TRUE(node("a").weir->wait_for_stderr(
      "refused a connection from \\S+: it belongs to cluster 'other', this node to 'test'", 20000))
      << node("a").weir->stdout_text();
  EXPECT_TRUE(node("c").weir->wait_for_stderr("node a \\(\\S+\\) refused this node", 20000))
      << node("c").weir->stdout_text();
  node("c").weir.reset();

  // c in the cluster with st keyed on integers: linked, but st not shared.
  std::string integer_tables = kTables;
  integer_tables.replace(integer_tables.find("type: string"), 12, "type: integer");
  ASSERT_TRUE(start("c", "test", integer_tables));
  EXPECT_TRUE(node("a").weir->wait_for_stderr(
      "table st has another key type on node c \\(integer\\) than here \\(string\\)", 20000))
      << node("a").weir->stdout_text();
  EXPECT_TRUE(wait_mesh());
  ASSERT_EQ(request("a", "after"), 200);
  EXPECT_TRUE(wait_table(
      "b", [](const TableView& v) { return v.has("after"); }, "after"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(show("c").info("used"), "0") << show("c").text;
}

TEST_F(Cluster, ARestartedNodeIsResyncedWhole) {
  ASSERT_TRUE(c_stopped_holding("before"));
  for (int i = 0; i < 50; ++i) ASSERT_EQ(request(i % 2 ? "a" : "b", "k" + std::to_string(i)), 200);
  ASSERT_TRUE(api("b", "set table st key tag data.gpt0 3").find("rror") == std::string::npos);
  ASSERT_TRUE(start("c"));
  EXPECT_TRUE(wait_table(
      "c",
      [](const TableView& v) {
        for (int i = 0; i < 50; ++i) {
          if (field(v, "k" + std::to_string(i), "http_req_cnt") != 1) return false;
        }
        return v.has("before") && v.at("tag", "gpt(0)") == "3";
      },
      "every entry written while it was away"));
  EXPECT_TRUE(node("c").weir->wait_for_stderr("full resync from node [ab] complete", 20000));
  // One of a and b sent the whole tables; the other waited, and then sent
  // only what that resync had not brought of it (the counts above are 1, not 2).
  EXPECT_TRUE(node("c").weir->wait_for_stderr(
      "node [ab]'s updates up to [0-9]+ came with node [ab]'s full resync", 20000));
  const std::string log = node("c").weir->stderr_text();
  EXPECT_EQ(log.find("full resync from node a complete") == std::string::npos,
            log.find("full resync from node b complete") != std::string::npos)
      << log;
  // And what c writes now reaches the others, and theirs reach c.
  ASSERT_EQ(request("c", "back"), 200);
  ASSERT_EQ(request("a", "from-a"), 200);
  ASSERT_EQ(request("b", "from-b"), 200);
  EXPECT_TRUE(wait_table(
      "a", [](const TableView& v) { return v.has("back"); }, "back"));
  EXPECT_TRUE(wait_table(
      "c",
      [](const TableView& v) {
        return field(v, "from-a", "http_req_cnt") == 1 && field(v, "from-b", "http_req_cnt") == 1;
      },
      "from-a and from-b"));
  // c's agent gave the resync to its worker first and took it into its own
  // tables after: a worker of a new generation, loaded from the agent, has
  // all of it (with what came after it).
  EXPECT_TRUE(node("c").weir->wait_for_stderr(
      "this agent's tables hold the full resync too \\([1-9][0-9]* rows", 20000));
  node("c").weir->signal(SIGHUP);
  ASSERT_TRUE(node("c").weir->wait_ready_count(2, 20000));
  EXPECT_TRUE(node("c").weir->wait_for_stderr("worker pid=[0-9]+ generation=1 exited", 20000))
      << node("c").weir->stderr_text();
  EXPECT_TRUE(wait_table(
      "c",
      [](const TableView& v) {
        for (int i = 0; i < 50; ++i) {
          if (field(v, "k" + std::to_string(i), "http_req_cnt") != 1) return false;
        }
        return v.has("before") && v.at("tag", "gpt(0)") == "3" &&
               field(v, "from-a", "http_req_cnt") == 1 && field(v, "back", "http_req_cnt") == 1;
      },
      "every entry, in the new generation"));
}

TEST_F(Cluster, ANodeBackFromARestartIsSentItsResyncAtOnce) {
  // The others learn of the restart from its first hello, not from its
  // silence (2 s without an answer), and start its resync then.
  ASSERT_TRUE(c_stopped_holding("before"));
  ASSERT_TRUE(start("c"));
  EXPECT_TRUE(wait_table(
      "c", [](const TableView& v) { return v.has("before"); }, "before, after the restart"));
  const std::string logs = node("a").weir->stderr_text() + node("b").weir->stderr_text();
  EXPECT_TRUE(
      std::regex_search(logs, std::regex("link to node c \\([0-9.:]+\\) lost: it restarted")))
      << logs;
}

TEST_F(Cluster, ARestartedNodeDropsWhatWasDeletedWhileItWasAway) {
  state_dir_ = true;  // c comes back with its own saved tables, "doomed" among them
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  ASSERT_EQ(request("a", "doomed"), 200);
  ASSERT_EQ(request("a", "kept"), 200);
  ASSERT_TRUE(wait_table(
      "c", [](const TableView& v) { return v.has("doomed") && v.has("kept"); }, "both entries"));
  ASSERT_TRUE(stop_node("c"));
  api("a", "clear table st key doomed");
  ASSERT_TRUE(wait_table(
      "b", [](const TableView& v) { return !v.has("doomed"); }, "no doomed"));
  // What a and b send to c is slowed down, so that c's own full resync, with
  // the stale entry in it, leaves before their tombstone reaches c.
  relay("a", "c").set_delay_ms(400);
  relay("b", "c").set_delay_ms(400);
  ASSERT_TRUE(start("c"));
  EXPECT_TRUE(node("c").weir->wait_for_stderr("loaded [1-9][0-9]* entries", 20000));
  EXPECT_TRUE(node("c").weir->wait_for_stderr("full resync from node [ab] complete", 20000));
  EXPECT_TRUE(wait_table(
      "c", [](const TableView& v) { return !v.has("doomed") && v.has("kept"); },
      "doomed gone and kept kept"));
  // The others leave the stale row out, as older than the delete.
  for (const char* other : {"a", "b"}) {
    EXPECT_TRUE(node(other).weir->wait_for_stderr(
        "full resync from node c complete: [0-9]+ entries in [0-9]+ ms \\(1 older than a "
        "delete left out\\)",
        20000))
        << other;
    TableView v = show(other);
    EXPECT_FALSE(v.has("doomed")) << other << "\n" << v.text;
    EXPECT_TRUE(v.has("kept")) << other << "\n" << v.text;
  }
}

TEST_F(Cluster, ACutNodeCatchesUpAfterHealingWithTheOriginsExpiry) {
  expire_ = "1h";
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  ASSERT_EQ(request("a", "old"), 200);
  ASSERT_TRUE(wait_table(
      "c", [](const TableView& v) { return v.has("old"); }, "old"));
  cut("a", "c");
  cut("b", "c");
  // Updates of existing entries and new ones while c cannot hear them.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(request("a", "old"), 200);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(request("b", "new" + std::to_string(i)), 200);
  ASSERT_EQ(request("c", "lonely"), 200);
  EXPECT_TRUE(node("a").weir->wait_for_stderr("link to node c \\S+ lost", 20000));
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(field(show("c"), "old", "http_req_cnt"), 1);
  heal("a", "c");
  heal("b", "c");
  EXPECT_TRUE(wait_table(
      "c",
      [](const TableView& v) {
        for (int i = 0; i < 100; ++i) {
          if (!v.has("new" + std::to_string(i))) return false;
        }
        return field(v, "old", "http_req_cnt") == 4;
      },
      "every update made during the cut"));
  EXPECT_TRUE(wait_table(
      "a", [](const TableView& v) { return v.has("lonely"); }, "lonely"));
  // The entries made during the cut kept the life their origin gave them: at
  // least the cut's 3 s less than a whole hour.
  const int64_t exp = field(show("c"), "new0", "exp");
  EXPECT_GT(exp, 0);
  EXPECT_LT(exp, 3600000 - 2500) << show("c").text;
}

TEST_F(Cluster, AReloadUnderLoadLosesNoUpdate) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::thread load([&] {
    int i = 0;
    while (!stop.load()) {
      if (request(++i % 2 ? "a" : "c", "busy") == 200) ok.fetch_add(1);
    }
  });
  for (int r = 0; r < 3; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    node("b").weir->signal(SIGHUP);
    ASSERT_TRUE(node("b").weir->wait_ready_count(static_cast<size_t>(r + 2), 20000));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop.store(true);
  load.join();
  ASSERT_GT(ok.load(), 0);
  const int64_t want = ok.load();
  for (const std::string& n : kNodes) {
    EXPECT_TRUE(wait_table(
        n, [&](const TableView& v) { return field(v, "busy", "http_req_cnt") == want; },
        "busy at " + std::to_string(want)));
  }
}

// ---- weir -c and weirctl peers keygen ---------------------------------------------------

class ClusterConfig : public Cluster {
 protected:
  std::string check(const std::string& yaml) {
    const std::string path = dir_ + "/check.yaml";
    write_file(path, yaml);
    CommandResult r = run_command({weir_binary(), "-c", "-f", path});
    return std::to_string(r.exit_code) + " " + r.out + r.err;
  }
};

TEST_F(ClusterConfig, WeirCheckNamesWhatIsWrongWithItsLine) {
  EXPECT_EQ(check(config("a")).substr(0, 2), "0 ");
  std::string y = config("a");
  y.replace(y.find("local: a"), 8, "local: z");
  EXPECT_TRUE(std::regex_search(check(y), std::regex("^1 .*:\\d+:10: peers: this node, 'z', is not "
                                                     "in nodes \\(listed: a, b, c\\)")))
      << check(y);
  y = config("a");
  y.replace(y.find(node("b").public_key), 40, std::string(39, 'x') + "~");
  EXPECT_TRUE(std::regex_search(check(y), std::regex("^1 .*:\\d+:\\d+: peers: node 'b': "
                                                     "public_key: not Z85 text")))
      << check(y);
  y = config("a");
  y.replace(y.find(node("a").public_key), 40, node("b").public_key);
  EXPECT_TRUE(std::regex_search(check(y), std::regex("^1 .*:\\d+:\\d+: peers: the key in \\S+ "
                                                     "\\(public key \\S+\\) is not the one nodes "
                                                     "lists for 'a'")))
      << check(y);
  y = config("a");
  y = y.substr(0, y.find("peers:")) + y.substr(y.find("stick_tables:"));
  EXPECT_TRUE(std::regex_search(check(y), std::regex("^1 .*: stick table 'st': sync: true shares "
                                                     "the table .* no peers: section")))
      << check(y);
}

TEST_F(ClusterConfig, KeygenWritesAPrivateFileAndNeverOverwritesOne) {
  const std::string path = dir_ + "/fresh.key";
  CommandResult r = weirctl({"peers", "keygen", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("public_key: \"\\S{40}\"\n"))) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = read_file(path);
  EXPECT_NE(before.find("secret_key: \""), std::string::npos);
  r = weirctl({"peers", "keygen", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("File exists"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(path), before);
}

// ---------------------------------------------------------------------------
// Server states set at runtime on one node reach every node (issue 22).

// The `show servers state` line of backend app's server s on a node.
std::string server_line(const std::string& answer, const std::string& s) {
  std::istringstream in(answer);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("app " + s + " ", 0) == 0) return line;
  }
  return "";
}

TEST_F(Cluster, ServerStatesSetOnOneNodeReachEveryNode) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  EXPECT_EQ(api("a", "set server app/s1 state maint"), "\n");
  EXPECT_EQ(api("b", "set server app/s2 weight 7"), "\n");
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] {
          const std::string st = api(n, "show servers state app");
          return server_line(st, "s1").find(" maint ") != std::string::npos &&
                 server_line(st, "s2").find(" 7 ") != std::string::npos;
        },
        10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
  // A server added on c is there on a and b, in the state it was given.
  const std::string added = api("c", "add server app/s3 " + origin_.address() + " state drain");
  EXPECT_NE(added.find("New server registered"), std::string::npos) << added;
  for (const char* n : {"a", "b"}) {
    EXPECT_TRUE(wait_until(
        [&] {
          return server_line(api(n, "show servers state app"), "s3").find(" drain ") !=
                 std::string::npos;
        },
        10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
  // The later of two changes of the same server wins everywhere.
  EXPECT_EQ(api("a", "set server app/s1 state drain"), "\n");
  // Later by more than the coarse wall clock's step (a few ms), which the
  // stamps are made from: changes closer than that are concurrent, and the
  // node number decides, the same way on every node.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(api("b", "set server app/s1 state ready"), "\n");
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] {
          return server_line(api(n, "show servers state app"), "s1").find(" ready ") !=
                 std::string::npos;
        },
        10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
  // A server deleted on a (in maint first) goes on every node.
  EXPECT_EQ(api("a", "set server app/s3 state maint"), "\n");
  EXPECT_NE(api("a", "del server app/s3").find("deleted"), std::string::npos);
  for (const char* n : {"b", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] { return server_line(api(n, "show servers state app"), "s3").empty(); }, 10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
  // A reload of a keeps a server added at runtime on b, and c, restarted
  // without a state_dir, gets every state back from the others.
  EXPECT_NE(api("b", "add server app/s4 " + origin_.address() + " state ready weight 3")
                .find("New server registered"),
            std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] { return !server_line(api("a", "show servers state app"), "s4").empty(); }, 10000));
  node("a").weir->signal(SIGHUP);
  ASSERT_TRUE(node("a").weir->wait_ready_count(2, 20000));
  ASSERT_TRUE(stop_node("c"));
  ASSERT_TRUE(start("c"));
  for (const char* n : {"a", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] {
          const std::string st = api(n, "show servers state app");
          return server_line(st, "s4").find(" ready 3 ") != std::string::npos &&
                 server_line(st, "s2").find(" 7 ") != std::string::npos &&
                 server_line(st, "s3").empty();
        },
        10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
}

// A server deleted on one node while another still has a request on it: that
// node puts it in maint at once (no new request goes to it) and deletes it
// when the request ends, without another command from anyone.
TEST_F(Cluster, AServerDeletedElsewhereGoesOnceItsLastRequestHereEnds) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  EXPECT_EQ(api("a", "set server app/s1 state maint"), "\n");
  EXPECT_EQ(api("a", "set server app/s2 state maint"), "\n");
  EXPECT_NE(api("a", "add server app/s6 " + origin_.address() + " state ready")
                .find("New server registered"),
            std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string st = api("b", "show servers state app");
        return server_line(st, "s6").find(" ready ") != std::string::npos &&
               server_line(st, "s2").find(" maint ") != std::string::npos;
      },
      10000))
      << api("b", "show servers state app");
  // A request through b that the origin never answers: s6 carries it.
  HttpClient held(node("b").http_port, node("b").ip);
  ASSERT_TRUE(held.send_raw("GET /?blackhole=1 HTTP/1.1\r\nHost: x\r\nX-Key: held\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return origin_.current_requests() >= 1; }, 10000));
  EXPECT_EQ(api("a", "set server app/s6 state maint"), "\n");
  EXPECT_NE(api("a", "del server app/s6").find("deleted"), std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] { return server_line(api("c", "show servers state app"), "s6").empty(); }, 10000))
      << api("c", "show servers state app");
  ASSERT_TRUE(wait_until(
      [&] {
        return server_line(api("b", "show servers state app"), "s6").find(" maint ") !=
               std::string::npos;
      },
      10000))
      << api("b", "show servers state app");
  // Still there while its request is: deleting it would cut the request.
  EXPECT_NE(server_line(api("b", "show servers state app"), "s6"), "");
  held.close();
  EXPECT_TRUE(wait_until(
      [&] { return server_line(api("b", "show servers state app"), "s6").empty(); }, 10000))
      << api("b", "show servers state app");
}

TEST_F(Cluster, ServerStatesSurviveARestartOfTheWholeClusterInStateDir) {
  state_dir_ = true;
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh());
  EXPECT_EQ(api("a", "set server app/s1 state drain"), "\n");
  EXPECT_NE(api("b", "add server app/s5 " + origin_.address() + " state ready weight 9")
                .find("New server registered"),
            std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string st = api("c", "show servers state app");
        return server_line(st, "s5").find(" ready 9 ") != std::string::npos &&
               server_line(st, "s1").find(" drain ") != std::string::npos;
      },
      10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // saved within a second
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_TRUE(stop_node(n));
  }
  // Each node alone, before the others are back, has them from its state_dir.
  for (const char* n : {"c", "a", "b"}) {
    ASSERT_TRUE(start(n));
    EXPECT_TRUE(wait_until(
        [&] {
          const std::string st = api(n, "show servers state app");
          return server_line(st, "s5").find(" ready 9 ") != std::string::npos &&
                 server_line(st, "s1").find(" drain ") != std::string::npos;
        },
        10000))
        << n << ":\n"
        << api(n, "show servers state app");
  }
}

TEST_F(Cluster, HealthIsCheckedByEachNodeAndNotShared) {
  // a checks s1 on a port where nothing listens; b and c on the origin's.
  const std::string origin_port = origin_.address().substr(origin_.address().rfind(':') + 1);
  auto with_check = [](const std::string& port) {
    std::string t = kTables;
    const std::string servers = "servers: {s1: \"@APP@\", s2: \"@APP@\"}";
    t.replace(t.find(servers), servers.size(),
              "check: {inter: 100ms, rise: 1, fall: 1}\n    servers: {s1: {address: \"@APP@\", "
              "check: {port: " +
                  port + "}}, s2: \"@APP@\"}");
    return t;
  };
  ASSERT_TRUE(start("a", "test", with_check(std::to_string(free_tcp_port()))));
  ASSERT_TRUE(start("b", "test", with_check(origin_port)));
  ASSERT_TRUE(start("c", "test", with_check(origin_port)));
  ASSERT_TRUE(wait_mesh());
  EXPECT_TRUE(wait_until(
      [&] {
        return server_line(api("a", "show servers state app"), "s1").find(" down ") !=
               std::string::npos;
      },
      10000))
      << api("a", "show servers state app");
  // An operator's change on a still reaches the others, the health does not.
  EXPECT_EQ(api("a", "set server app/s2 weight 4"), "\n");
  for (const char* n : {"b", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] {
          return server_line(api(n, "show servers state app"), "s2").find(" 4 ") !=
                 std::string::npos;
        },
        10000))
        << n;
    EXPECT_NE(server_line(api(n, "show servers state app"), "s1").find(" up "), std::string::npos)
        << n << ":\n"
        << api(n, "show servers state app");
  }
}

}  // namespace
}  // namespace weir::test::cluster
