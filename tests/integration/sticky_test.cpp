// Sticky sessions (issue 21) end to end: a backend's `stick:` rules on a stick
// table that stores server_key (match / store / store_response, in http and tcp
// mode), and `cookie:` persistence (insert with its attributes, indirect,
// nocache, per-server and dynamic values, rewrite, prefix, maxidle, maxlife),
// as a user sees them: which server answers, what Set-Cookie says, what the
// server receives, what `show table` lists. Both kinds keep their clients
// across a reload that adds and reorders servers, and through drain; maint and
// DOWN move them (stick_redispatch). `weir -c` names the mistakes. Real weir,
// real origins (each answers with its name in X-Server), curl with a cookie jar.

#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/sticky.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test::sticky {
namespace {
constexpr const char* kStickSrc = R"y(stick_tables:
  t: {type: ip, size: 1k, expire: 10m, store: [server_key]}
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    stick: {match: src, store: src, table: t}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

TEST_F(Sticky, StickOnSrcSendsEveryConnectionOfAClientToOneServerAndShowTableNamesIt) {
  ASSERT_TRUE(start(kStickSrc, servers()));
  const std::string first = server_of();
  ASSERT_TRUE(first == "s1" || first == "s2" || first == "s3") << first;
  for (int i = 0; i < 19; ++i) EXPECT_EQ(server_of(), first) << "request " << i + 2;
  TableView t;
  ASSERT_TRUE(wait_field("t", "127.0.0.1", "server_key", first, &t)) << t.text;
  EXPECT_EQ(t.entries.size(), 1u) << t.text;

  // Other addresses are other keys: each sticks to the server it got first.
  std::map<std::string, std::string> stuck;
  for (const char* source : {"127.0.0.2", "127.0.0.3", "127.0.0.4"})
    stuck[source] = server_of({}, "/", 0, source);
  for (int round = 0; round < 3; ++round)
    for (const auto& [source, server] : stuck)
      EXPECT_EQ(server_of({}, "/", 0, source), server) << source;
  EXPECT_EQ(server_of(), first);
  ASSERT_TRUE(wait_table(
      "t", [](const TableView& v) { return v.entries.size() == 4; }, &t))
      << t.text;
  for (const auto& [source, server] : stuck)
    EXPECT_EQ(t.at(source, "server_key"), server) << t.text;
}

// A session id the server issues, learnt from its response (store_response)
// and matched on what the client sends back: a header of its own (X-Session)
// or the application's cookie (JSESSIONID, res.cook / req.cook).
constexpr const char* kStickSessions = R"y(stick_tables:
  s: {type: string, key_size: 64, size: 1k, expire: 10m, store: [server_key]}
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    stick:
      - {match: "req.hdr(X-Session)", table: s}
      - {store_response: "res.hdr(X-Session)", table: s}
      - {store_response: "res.cook(JSESSIONID)", table: s}
      - {match: "req.cook(JSESSIONID)", table: s}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

class StickySessions : public Sticky {
 protected:
  // Six sessions, each issued by the server that answered (`issue` makes the
  // target that has it answer with the id, `expect` the field it answers); the
  // entries name their issuers, and sending an id back (`send_back`) always
  // reaches its issuer.
  void check_sessions(
      const std::function<std::string(const std::string&)>& issue,
      const std::function<std::pair<std::string, std::string>(const std::string&)>& expect,
      const std::function<Headers(const std::string&)>& send_back) {
    ASSERT_TRUE(start(kStickSessions, servers()));
    std::map<std::string, std::string> issuer;
    for (int i = 0; i < 6; ++i) {
      const std::string sid = "sid-" + std::to_string(i);
      HttpClient c(port_);
      auto r = c.request("GET", issue(sid), {{"Connection", "close"}});
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200);
      const auto [field, value] = expect(sid);
      ASSERT_EQ(r->header(field), value);
      issuer[sid] = r->header("X-Server");
    }
    EXPECT_EQ(distinct(issuer).size(), 3u) << "the sessions were not balanced";
    TableView t;
    ASSERT_TRUE(wait_table(
        "s", [](const TableView& v) { return v.entries.size() == 6; }, &t))
        << t.text;
    for (const auto& [sid, server] : issuer) EXPECT_EQ(t.at(sid, "server_key"), server) << t.text;
    for (int round = 0; round < 3; ++round)
      for (const auto& [sid, server] : issuer) EXPECT_EQ(server_of(send_back(sid)), server) << sid;
    // Without an id (or with one nobody issued) requests are balanced.
    std::set<std::string> seen;
    for (int i = 0; i < 6; ++i) seen.insert(server_of());
    EXPECT_EQ(seen, (std::set<std::string>{"s1", "s2", "s3"}));
    seen.clear();
    for (int i = 0; i < 6; ++i) seen.insert(server_of(send_back("never-issued")));
    EXPECT_EQ(seen, (std::set<std::string>{"s1", "s2", "s3"}));
    EXPECT_FALSE(show("s").has("never-issued"));
  }
};

TEST_F(StickySessions, ASessionIdTheServerIssuedInAHeaderBringsTheClientBackToThatServer) {
  check_sessions([](const std::string& sid) { return "/?header=X-Session:" + sid; },
                 [](const std::string& sid) {
                   return std::pair<std::string, std::string>{"X-Session", sid};
                 },
                 [](const std::string& sid) {
                   return Headers{{"X-Session", sid}};
                 });
}

TEST_F(StickySessions, TheApplicationsSessionCookieBringsTheClientBackToTheServerThatSetIt) {
  // The server answers Set-Cookie: JSESSIONID=ID; Path=/; HttpOnly
  check_sessions(
      [](const std::string& sid) {
        return "/?header=Set-Cookie:JSESSIONID%3D" + sid + "%3B%20Path%3D%2F%3B%20HttpOnly";
      },
      [](const std::string& sid) {
        return std::pair<std::string, std::string>{"Set-Cookie",
                                                   "JSESSIONID=" + sid + "; Path=/; HttpOnly"};
      },
      [](const std::string& sid) {
        return Headers{{"Cookie", "theme=dark; JSESSIONID=" + sid}};
      });
}

constexpr const char* kStickUsers = R"y(stick_tables:
  users: {type: string, size: 1k, expire: 10m, store: [server_key]}
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
@REDISPATCH@
@CHECK@
    stick: {match: "hdr(X-User)", store: "hdr(X-User)", table: users}
    servers:
@SERVERS@
)y";

const std::string kThreeServers = "      s1: \"@S1@\"\n      s2: \"@S2@\"\n      s3: \"@S3@\"";
const std::string kFourReordered =
    "      s4: \"@S4@\"\n      s3: \"@S3@\"\n      s1: \"@S1@\"\n      s2: \"@S2@\"";

Vars users_vars(const std::string& servers_block, const std::string& redispatch = "",
                const std::string& check = "") {
  return {{"@SERVERS@", servers_block}, {"@REDISPATCH@", redispatch}, {"@CHECK@", check}};
}

class StickyUsers : public Sticky {
 protected:
  // u1..un, each on the server it got first (spread over all three), as their
  // entries say.
  std::map<std::string, std::string> stick_users(int n) {
    std::map<std::string, std::string> stuck;
    for (int i = 1; i <= n; ++i) {
      const std::string u = "u" + std::to_string(i);
      stuck[u] = user(u);
    }
    EXPECT_EQ(distinct(stuck), (std::set<std::string>{"s1", "s2", "s3"}));
    TableView t;
    EXPECT_TRUE(wait_table(
        "users", [&](const TableView& v) { return v.entries.size() == stuck.size(); }, &t))
        << t.text;
    for (const auto& [u, server] : stuck) EXPECT_EQ(t.at(u, "server_key"), server) << t.text;
    return stuck;
  }
  // The first user stuck on `server`.
  static std::string user_on(const std::map<std::string, std::string>& stuck,
                             const std::string& server) {
    for (const auto& [u, s] : stuck)
      if (s == server) return u;
    return "<nobody on " + server + ">";
  }
};

TEST_F(StickyUsers, AReloadThatAddsAndReordersServersMovesNoStuckUser) {
  ASSERT_TRUE(start(kStickUsers, servers(users_vars(kThreeServers))));
  const auto stuck = stick_users(9);
  ASSERT_NO_FATAL_FAILURE(reload_with(kStickUsers, servers(users_vars(kFourReordered))));
  for (int round = 0; round < 3; ++round)
    for (const auto& [u, server] : stuck) EXPECT_EQ(user(u), server) << u << " after the reload";
  // The entries still name the same servers.
  TableView t = show("users");
  for (const auto& [u, server] : stuck) EXPECT_EQ(t.at(u, "server_key"), server) << t.text;
  // New users are balanced over the four servers, the new one included.
  std::set<std::string> fresh;
  for (int i = 1; i <= 8; ++i) fresh.insert(user("new" + std::to_string(i)));
  EXPECT_EQ(fresh, (std::set<std::string>{"s1", "s2", "s3", "s4"}));
  for (const auto& [u, server] : stuck) EXPECT_EQ(user(u), server) << u;
}

TEST_F(StickyUsers, AServerRemovedByAReloadOrAtRuntimeLosesItsUsersAndTheOthersStay) {
  ASSERT_TRUE(start(kStickUsers, servers(users_vars(kThreeServers))));
  const auto stuck = stick_users(9);
  // A reload without s2: its users go elsewhere and their entries follow; the
  // users of s1 and s3 stay.
  const std::string without_s2 = "      s3: \"@S3@\"\n      s1: \"@S1@\"";
  ASSERT_NO_FATAL_FAILURE(reload_with(kStickUsers, servers(users_vars(without_s2))));
  std::map<std::string, std::string> moved;
  for (const auto& [u, server] : stuck) {
    const std::string now = user(u);
    if (server == "s2") {
      EXPECT_TRUE(now == "s1" || now == "s3") << u << " got " << now;
      moved[u] = now;
    } else {
      EXPECT_EQ(now, server) << u;
    }
  }
  ASSERT_FALSE(moved.empty());
  TableView t;
  EXPECT_TRUE(wait_table(
      "users",
      [&](const TableView& v) {
        for (const auto& [u, server] : moved)
          if (v.at(u, "server_key") != server) return false;
        return true;
      },
      &t))
      << t.text;
  for (const auto& [u, server] : moved) EXPECT_EQ(user(u), server) << u << " stays where it went";
  // At runtime: s1 into maint, then deleted; its users move the same way.
  ASSERT_TRUE(set_state("app/s1", "maint"));
  CommandResult del = weirctl({"-s", admin(), "del", "server", "app/s1"});
  ASSERT_EQ(del.exit_code, 0) << del.out;
  for (const auto& [u, server] : stuck) {
    if (server == "s1") {
      EXPECT_EQ(user(u), "s3") << u;
    }
  }
}

TEST_F(StickyUsers, WithoutStickRedispatchAUserOfARemovedServerGets503) {
  ASSERT_TRUE(
      start(kStickUsers, servers(users_vars(kThreeServers, "    stick_redispatch: false"))));
  const auto stuck = stick_users(6);
  const std::string without_s2 = "      s1: \"@S1@\"\n      s3: \"@S3@\"";
  ASSERT_NO_FATAL_FAILURE(
      reload_with(kStickUsers, servers(users_vars(without_s2, "    stick_redispatch: false"))));
  for (const auto& [u, server] : stuck)
    EXPECT_EQ(user(u), server == "s2" ? "status 503" : server) << u;
  // A user nobody stuck is balanced as usual.
  const std::string fresh = user("fresh");
  EXPECT_TRUE(fresh == "s1" || fresh == "s3") << fresh;
}

TEST_F(StickyUsers, DrainKeepsTheUsersOfAServerAndSendsItNoNewOnes) {
  ASSERT_TRUE(start(kStickUsers, servers(users_vars(kThreeServers))));
  const auto stuck = stick_users(6);
  const std::string drained = stuck.at("u1");
  ASSERT_TRUE(set_state("app/" + drained, "drain"));
  for (int round = 0; round < 3; ++round)
    for (const auto& [u, server] : stuck) EXPECT_EQ(user(u), server) << u << " while draining";
  for (int i = 1; i <= 9; ++i) {
    const std::string u = "new" + std::to_string(i);
    const std::string got = user(u);
    EXPECT_NE(got, drained) << u << " is a new user";
    EXPECT_TRUE(got == "s1" || got == "s2" || got == "s3") << got;
    EXPECT_EQ(user(u), got) << u << " sticks too";
  }
}

TEST_F(StickyUsers, MaintMovesItsUsersToAnotherServerAndTheEntryFollows) {
  ASSERT_TRUE(start(kStickUsers, servers(users_vars(kThreeServers))));
  const auto stuck = stick_users(6);
  const std::string gone = stuck.at("u1");
  ASSERT_TRUE(set_state("app/" + gone, "maint"));
  std::map<std::string, std::string> moved;
  for (const auto& [u, server] : stuck) {
    const std::string now = user(u);
    if (server == gone) {
      EXPECT_NE(now, gone) << u;
      EXPECT_TRUE(now == "s1" || now == "s2" || now == "s3") << u << ": " << now;
      moved[u] = now;
    } else {
      EXPECT_EQ(now, server) << u << " was not on the server in maint";
    }
  }
  ASSERT_FALSE(moved.empty());
  TableView t;
  for (const auto& [u, server] : moved) {
    EXPECT_TRUE(wait_field("users", u, "server_key", server, &t)) << u << "\n" << t.text;
    EXPECT_EQ(user(u), server) << u << " sticks to its new server";
  }
  // Back in service, the server has lost them: they stay where they went.
  ASSERT_TRUE(set_state("app/" + gone, "ready"));
  for (const auto& [u, server] : moved) EXPECT_EQ(user(u), server) << u;
}

TEST_F(StickyUsers, ADownServerLosesItsUsersToAnotherServerAndTheEntryFollows) {
  ASSERT_TRUE(start(kStickUsers,
                    servers(users_vars(kThreeServers, "",
                                       "    check: {type: http, path: /, inter: 100ms, rise: 1, "
                                       "fall: 1}"))));
  ASSERT_TRUE(wait_until([&] { return stat_status("app", "s3") == "UP"; }, 10000))
      << api("show stat");
  const auto stuck = stick_users(6);
  const std::string gone = stuck.at("u1");
  origin(gone).set_default_status(503);  // its checks fail from now on
  ASSERT_TRUE(wait_until([&] { return stat_status("app", gone) == "DOWN"; }, 15000))
      << api("show stat");
  std::map<std::string, std::string> moved;
  for (const auto& [u, server] : stuck) {
    const std::string now = user(u);
    if (server == gone) {
      EXPECT_NE(now, gone) << u;
      EXPECT_TRUE(now == "s1" || now == "s2" || now == "s3") << u << ": " << now;
      moved[u] = now;
    } else {
      EXPECT_EQ(now, server) << u;
    }
  }
  TableView t;
  for (const auto& [u, server] : moved) {
    EXPECT_TRUE(wait_field("users", u, "server_key", server, &t)) << u << "\n" << t.text;
    EXPECT_EQ(user(u), server) << u;
  }
}

TEST_F(StickyUsers, WithoutStickRedispatchAUserStuckOnAServerInMaintGets503) {
  ASSERT_TRUE(
      start(kStickUsers, servers(users_vars(kThreeServers, "    stick_redispatch: false"))));
  const auto stuck = stick_users(6);
  const std::string gone = stuck.at("u1");
  ASSERT_TRUE(set_state("app/" + gone, "maint"));
  for (const auto& [u, server] : stuck) {
    if (server == gone) {
      EXPECT_EQ(user(u), "status 503") << u;
    } else {
      EXPECT_EQ(user(u), server) << u;
    }
  }
  // Its entry still names the server; new users go elsewhere.
  EXPECT_EQ(show("users").at("u1", "server_key"), gone);
  for (int i = 1; i <= 4; ++i) {
    const std::string got = user("new" + std::to_string(i));
    EXPECT_NE(got, gone);
    EXPECT_TRUE(got == "s1" || got == "s2" || got == "s3") << got;
  }
  // Back in service: its users are served there again.
  ASSERT_TRUE(set_state("app/" + gone, "ready"));
  EXPECT_EQ(user("u1"), gone);
}

constexpr const char* kStickTcp = R"y(stick_tables:
  t: {type: ip, size: 1k, expire: 10m, store: [server_key]}
frontends:
  db:
    mode: tcp
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    mode: tcp
    balance: roundrobin
    stick: {match: src, store: src, table: t}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

TEST_F(Sticky, InTcpModeEveryConnectionOfAClientReachesTheSameServer) {
  ASSERT_TRUE(start(kStickTcp, servers()));
  std::map<std::string, std::string> stuck;
  for (const char* source : {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"})
    stuck[source] = server_of({}, "/", 0, source);
  for (const auto& [source, server] : stuck)
    ASSERT_TRUE(server == "s1" || server == "s2" || server == "s3") << source << ": " << server;
  EXPECT_GE(distinct(stuck).size(), 2u) << "new clients were not balanced";
  for (int round = 0; round < 5; ++round)
    for (const auto& [source, server] : stuck)
      EXPECT_EQ(server_of({}, "/", 0, source), server) << source << " round " << round;
  TableView t;
  ASSERT_TRUE(wait_table(
      "t", [](const TableView& v) { return v.entries.size() == 4; }, &t))
      << t.text;
  for (const auto& [source, server] : stuck)
    EXPECT_EQ(t.at(source, "server_key"), server) << t.text;
}

// ===========================================================================
// Cookies

constexpr const char* kInsert = R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
  dressed:
    bind: ["127.0.0.1:@PORT2@"]
    default_backend: fancy
backends:
  app:
    balance: roundrobin
    cookie: {name: SERVERID, mode: insert, indirect: true, nocache: true}
    servers:
@SERVERS@
  fancy:
    cookie: {name: SERVERID, indirect: true, httponly: true, secure: true, samesite: Lax, domain: example.com, attr: ["Partitioned"]}
    servers: {s1: "@S1@", s2: "@S2@"}
)y";

class StickyCookies : public Sticky {
 protected:
  // Users c1..cn (a cookie jar each) on the server of their first response,
  // whose Set-Cookie names it.
  std::map<std::string, std::string> cookie_users(int n) {
    std::map<std::string, std::string> stuck;
    for (int i = 1; i <= n; ++i) {
      const std::string who = "c" + std::to_string(i);
      CurlReply r = with_jar(who);
      EXPECT_EQ(r.status, 200) << r.raw;
      stuck[who] = r.header("X-Server");
      EXPECT_EQ(the_set_cookie(r, "SERVERID"), "SERVERID=" + stuck[who] + "; Path=/") << r.raw;
    }
    EXPECT_EQ(distinct(stuck), (std::set<std::string>{"s1", "s2", "s3"}));
    return stuck;
  }
};

TEST_F(StickyCookies, InsertIndirectNocacheSetsTheServersCookieOnceAndHidesItFromTheServer) {
  ASSERT_TRUE(start(kInsert, servers(users_vars(kThreeServers))));
  CurlReply first = with_jar("alice");
  ASSERT_EQ(first.status, 200) << first.raw;
  const std::string server = first.header("X-Server");
  EXPECT_EQ(the_set_cookie(first, "SERVERID"), "SERVERID=" + server + "; Path=/") << first.raw;
  EXPECT_NE(ascii_lower(first.header("Cache-Control")).find("private"), std::string::npos)
      << "nocache: " << first.raw;
  for (int i = 0; i < 10; ++i) {
    CurlReply r = with_jar("alice");
    EXPECT_EQ(r.server(), server) << r.raw;
    EXPECT_TRUE(r.set_cookies().empty()) << "the request carried a valid cookie: " << r.raw;
  }
  // Indirect: no server ever saw the cookie.
  for (OriginServer* o : {&s1_, &s2_, &s3_})
    for (const RecordedRequest& rec : o->requests())
      EXPECT_EQ(rec.header("Cookie").find("SERVERID"), std::string::npos)
          << o->name() << " saw " << rec.header("Cookie");
  EXPECT_EQ(origin(server).requests().size(), 11u);

  // The application's own cookies pass, without SERVERID.
  {
    HttpClient c(port_);
    auto r = c.request("GET", "/", {{"Cookie", "a=1; SERVERID=" + server + "; b=2"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Server"), server);
    EXPECT_TRUE(r->header_values("Set-Cookie").empty()) << r->raw_head;
    const std::string seen = origin(server).requests().back().header("Cookie");
    EXPECT_NE(seen.find("a=1"), std::string::npos) << seen;
    EXPECT_NE(seen.find("b=2"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("SERVERID"), std::string::npos) << seen;
  }
  // Other users are balanced, each gets its own server's cookie.
  cookie_users(3);
  // A Set-Cookie of SERVERID that the application writes itself does not reach the client.
  {
    CurlReply r = with_jar("alice", "/?header=Set-Cookie:SERVERID%3Dmine");
    EXPECT_EQ(r.server(), server) << r.raw;
    for (const std::string& c : r.set_cookies())
      EXPECT_NE(cookie_value(c, "SERVERID"), std::optional<std::string>("mine")) << r.raw;
    EXPECT_EQ(with_jar("alice").server(), server);
  }

  // Every attribute configured, on a request for a host of the domain.
  HttpClient c(port2_);
  auto r = c.request("GET", "/", {{"Host", "www.example.com"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const auto cookies = r->header_values("Set-Cookie");
  ASSERT_EQ(cookies.size(), 1u) << r->raw_head;
  EXPECT_EQ(cookie_value(cookies[0], "SERVERID"), std::optional<std::string>(r->header("X-Server")))
      << cookies[0];
  EXPECT_EQ(cookie_attributes(cookies[0]),
            (std::set<std::string>{"path=/", "domain=example.com", "httponly", "secure",
                                   "samesite=lax", "partitioned"}))
      << cookies[0];
}

constexpr const char* kPerServer = R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    cookie: SERVERID
    servers:
      s1: {address: "@S1@", cookie: alpha}
      s2: {address: "@S2@", cookie: beta}
      s3: "@S3@"
)y";

TEST_F(StickyCookies, AServersCookieValueIsItsCookieElseItsName) {
  ASSERT_TRUE(start(kPerServer, servers()));
  std::map<std::string, std::string> value;  // server -> cookie value
  for (int i = 0; i < 9 && value.size() < 3; ++i) {
    CurlReply r = curl({});
    ASSERT_EQ(r.status, 200) << r.raw;
    auto v = cookie_value(the_set_cookie(r, "SERVERID"), "SERVERID");
    ASSERT_TRUE(v) << r.raw;
    value[r.header("X-Server")] = *v;
  }
  EXPECT_EQ(value,
            (std::map<std::string, std::string>{{"s1", "alpha"}, {"s2", "beta"}, {"s3", "s3"}}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(with_cookie("SERVERID=beta").server(), "s2");
    EXPECT_EQ(with_cookie("SERVERID=alpha").server(), "s1");
    EXPECT_EQ(with_cookie("SERVERID=s3").server(), "s3");
  }
  // s1's name is not its value: such a cookie names no server, a fresh one comes.
  CurlReply r = with_cookie("SERVERID=s1");
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(cookie_value(the_set_cookie(r, "SERVERID"), "SERVERID"),
            std::optional<std::string>(value[r.header("X-Server")]))
      << r.raw;
}

constexpr const char* kDynamic = R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    cookie: {name: SERVERID, dynamic: true}
    servers:
@SERVERS@
)y";

TEST_F(StickyCookies, DynamicValuesAreOpaqueAndSurviveAReload) {
  const std::string three =
      "      s1: \"@S1@\"\n      s2: \"@S2@\"\n      s3: {address: \"@S3@\", cookie: third}";
  const std::string four =
      "      s4: \"@S4@\"\n      s2: \"@S2@\"\n      s3: {address: \"@S3@\", cookie: third}\n"
      "      s1: \"@S1@\"";
  ASSERT_TRUE(start(kDynamic, servers({{"@SERVERS@", three}})));
  // server -> value, from fresh requests until every server has answered.
  auto values = [&](size_t servers) {
    std::map<std::string, std::string> value;
    for (int i = 0; i < 12 && value.size() < servers; ++i) {
      CurlReply r = curl({});
      EXPECT_EQ(r.status, 200) << r.raw;
      auto v = cookie_value(the_set_cookie(r, "SERVERID"), "SERVERID");
      EXPECT_TRUE(v) << r.raw;
      if (v) value[r.header("X-Server")] = *v;
    }
    return value;
  };
  const std::regex hex16("[0-9a-fA-F]{16}");
  auto before = values(3);
  ASSERT_EQ(before.size(), 3u);
  EXPECT_EQ(before["s3"], "third");
  for (const char* s : {"s1", "s2"}) {
    EXPECT_TRUE(std::regex_match(before[s], hex16)) << s << ": " << before[s];
    EXPECT_EQ(before[s].find(s), std::string::npos) << before[s];
    EXPECT_EQ(before[s].find(origin(s).address()), std::string::npos) << before[s];
  }
  EXPECT_NE(before["s1"], before["s2"]);
  // A user on s1 sticks.
  ASSERT_EQ(with_cookie("SERVERID=" + before["s1"]).server(), "s1");
  ASSERT_EQ(with_cookie("SERVERID=" + before["s2"]).server(), "s2");

  ASSERT_NO_FATAL_FAILURE(reload_with(kDynamic, servers({{"@SERVERS@", four}})));
  auto after = values(4);
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after["s1"], before["s1"]);
  EXPECT_EQ(after["s2"], before["s2"]);
  EXPECT_EQ(after["s3"], "third");
  EXPECT_TRUE(std::regex_match(after["s4"], hex16)) << after["s4"];
  EXPECT_NE(after["s4"], after["s1"]);
  EXPECT_NE(after["s4"], after["s2"]);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(with_cookie("SERVERID=" + before["s1"]).server(), "s1");
    EXPECT_EQ(with_cookie("SERVERID=" + before["s2"]).server(), "s2");
  }
}

constexpr const char* kAppCookie = R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    cookie: {name: JSESSIONID, mode: @MODE@}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

// The application's session cookie, set by the server on the first request of a user.
std::string app_sets(const std::string& session) {
  return "/?header=Set-Cookie:JSESSIONID%3D" + session + "%3B%20Path%3D%2F";
}

TEST_F(StickyCookies, RewriteReplacesTheApplicationsCookieValueWithTheServers) {
  ASSERT_TRUE(start(kAppCookie, servers({{"@MODE@", "rewrite"}})));
  std::map<std::string, std::string> stuck;
  for (int i = 1; i <= 3; ++i) {
    const std::string who = "r" + std::to_string(i);
    CurlReply r = with_jar(who, app_sets("xyz" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << r.raw;
    stuck[who] = r.header("X-Server");
    const std::string sc = the_set_cookie(r, "JSESSIONID");
    EXPECT_EQ(cookie_value(sc, "JSESSIONID"), std::optional<std::string>(stuck[who])) << r.raw;
    EXPECT_EQ(cookie_attributes(sc), (std::set<std::string>{"path=/"})) << sc;
  }
  EXPECT_EQ(distinct(stuck), (std::set<std::string>{"s1", "s2", "s3"}));
  for (int round = 0; round < 3; ++round) {
    for (const auto& [who, server] : stuck) {
      CurlReply r = with_jar(who);
      EXPECT_EQ(r.server(), server) << who << ": " << r.raw;
    }
  }
}

TEST_F(StickyCookies, PrefixPutsTheServersValueInFrontAndTheServerGetsItsOwnValueBack) {
  ASSERT_TRUE(start(kAppCookie, servers({{"@MODE@", "prefix"}})));
  std::map<std::string, std::string> stuck;
  for (int i = 1; i <= 3; ++i) {
    const std::string who = "p" + std::to_string(i);
    const std::string session = "xyz" + std::to_string(i);
    CurlReply r = with_jar(who, app_sets(session));
    ASSERT_EQ(r.status, 200) << r.raw;
    stuck[who] = r.header("X-Server");
    const std::string sc = the_set_cookie(r, "JSESSIONID");
    EXPECT_EQ(cookie_value(sc, "JSESSIONID"),
              std::optional<std::string>(stuck[who] + "~" + session))
        << r.raw;
  }
  EXPECT_EQ(distinct(stuck), (std::set<std::string>{"s1", "s2", "s3"}));
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i <= 3; ++i) {
      const std::string who = "p" + std::to_string(i);
      const std::string server = stuck[who];
      CurlReply r = with_jar(who);
      ASSERT_EQ(r.server(), server) << who << ": " << r.raw;
      const std::string seen = origin(server).requests().back().header("Cookie");
      EXPECT_EQ(seen, "JSESSIONID=xyz" + std::to_string(i)) << who;
    }
  }
}

TEST_F(StickyCookies, AReloadThatAddsAndReordersServersMovesNoCookieUser) {
  ASSERT_TRUE(start(kInsert, servers(users_vars(kThreeServers))));
  const auto stuck = cookie_users(6);
  ASSERT_NO_FATAL_FAILURE(reload_with(kInsert, servers(users_vars(kFourReordered))));
  for (int round = 0; round < 3; ++round) {
    for (const auto& [who, server] : stuck) {
      CurlReply r = with_jar(who);
      EXPECT_EQ(r.server(), server) << who << " after the reload: " << r.raw;
      EXPECT_TRUE(r.set_cookies().empty()) << r.raw;
    }
  }
  std::set<std::string> fresh;
  for (int i = 0; i < 8; ++i) fresh.insert(curl({}).server());
  EXPECT_EQ(fresh, (std::set<std::string>{"s1", "s2", "s3", "s4"}));
}

TEST_F(StickyCookies, DrainKeepsCookieUsersAndMaintMovesThemWithANewCookie) {
  ASSERT_TRUE(start(kInsert, servers(users_vars(kThreeServers))));
  const auto stuck = cookie_users(6);
  const std::string gone = stuck.at("c1");
  ASSERT_TRUE(set_state("app/" + gone, "drain"));
  for (const auto& [who, server] : stuck) {
    CurlReply r = with_jar(who);
    EXPECT_EQ(r.server(), server) << who << " while draining: " << r.raw;
  }
  for (int i = 0; i < 6; ++i) {
    CurlReply r = with_jar("new" + std::to_string(i));
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_NE(r.header("X-Server"), gone) << "a new user on the drained server";
  }

  ASSERT_TRUE(set_state("app/" + gone, "maint"));
  std::map<std::string, std::string> moved;
  for (const auto& [who, server] : stuck) {
    CurlReply r = with_jar(who);
    ASSERT_EQ(r.status, 200) << r.raw;
    if (server != gone) {
      EXPECT_EQ(r.header("X-Server"), server) << who;
      continue;
    }
    const std::string now = r.header("X-Server");
    EXPECT_NE(now, gone) << who;
    EXPECT_EQ(the_set_cookie(r, "SERVERID"), "SERVERID=" + now + "; Path=/") << r.raw;
    moved[who] = now;
  }
  ASSERT_FALSE(moved.empty());
  ASSERT_TRUE(set_state("app/" + gone, "ready"));
  for (const auto& [who, server] : moved) {
    CurlReply r = with_jar(who);
    EXPECT_EQ(r.server(), server) << who << " keeps its new server: " << r.raw;
    EXPECT_TRUE(r.set_cookies().empty()) << r.raw;
  }
}

TEST_F(StickyCookies, AForgedCookieIsIgnoredAndReplacedByARealOne) {
  ASSERT_TRUE(start(kInsert, servers(users_vars(kThreeServers))));
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    CurlReply r = with_cookie("SERVERID=nosuch");
    ASSERT_EQ(r.status, 200) << r.raw;
    seen.insert(r.header("X-Server"));
    EXPECT_EQ(the_set_cookie(r, "SERVERID"), "SERVERID=" + r.header("X-Server") + "; Path=/")
        << r.raw;
  }
  EXPECT_EQ(seen, (std::set<std::string>{"s1", "s2", "s3"})) << "forged cookies are balanced";
  // With a jar the forged value is replaced and the user then sticks.
  write_file(jar("mallory"), "127.0.0.1\tFALSE\t/\tFALSE\t0\tSERVERID\tnosuch\n");
  CurlReply r = with_jar("mallory");
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string server = r.header("X-Server");
  EXPECT_EQ(the_set_cookie(r, "SERVERID"), "SERVERID=" + server + "; Path=/") << r.raw;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(with_jar("mallory").server(), server);
}

constexpr const char* kDated = R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    balance: roundrobin
    cookie: {name: SERVERID, indirect: true, @LIMIT@}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

class StickyDatedCookies : public StickyCookies {
 protected:
  // A fresh cookie: "VALUE|LAST|FIRST" with dates of now (base 36 unix seconds).
  std::vector<std::string> fresh_cookie(std::string* server) {
    CurlReply r = curl({});
    EXPECT_EQ(r.status, 200) << r.raw;
    *server = r.header("X-Server");
    auto v = cookie_value(the_set_cookie(r, "SERVERID"), "SERVERID");
    EXPECT_TRUE(v) << r.raw;
    std::vector<std::string> parts = split(v.value_or(""), '|');
    EXPECT_EQ(parts.size(), 3u) << *v;
    if (parts.size() != 3) return {};
    EXPECT_EQ(parts[0], *server);
    for (size_t i = 1; i < 3; ++i)
      EXPECT_LE(std::llabs(from_base36(parts[i]) - unix_now()), 300) << "a date of now: " << *v;
    return parts;
  }
  // The cookie `value` is honoured: every request reaches `server`.
  void expect_honoured(const std::string& value, const std::string& server) {
    for (int i = 0; i < 6; ++i) EXPECT_EQ(with_cookie("SERVERID=" + value).server(), server);
  }
  // The cookie `value` is ignored: requests are balanced and each gets a fresh cookie
  // for the server that answered.
  void expect_ignored(const std::string& value) {
    std::set<std::string> seen;
    for (int i = 0; i < 6; ++i) {
      CurlReply r = with_cookie("SERVERID=" + value);
      ASSERT_EQ(r.status, 200) << r.raw;
      const std::string server = r.header("X-Server");
      seen.insert(server);
      auto v = cookie_value(the_set_cookie(r, "SERVERID"), "SERVERID");
      ASSERT_TRUE(v) << "no fresh cookie: " << r.raw;
      std::vector<std::string> parts = split(*v, '|');
      ASSERT_EQ(parts.size(), 3u) << *v;
      EXPECT_EQ(parts[0], server);
      for (size_t k = 1; k < 3; ++k)
        EXPECT_LE(std::llabs(from_base36(parts[k]) - unix_now()), 300) << "fresh dates: " << *v;
    }
    EXPECT_EQ(seen, (std::set<std::string>{"s1", "s2", "s3"})) << value << " was honoured";
  }
};

TEST_F(StickyDatedCookies, MaxidleIgnoresACookieIdleTooLong) {
  ASSERT_TRUE(start(kDated, servers({{"@LIMIT@", "maxidle: 10m"}})));
  std::string server;
  auto parts = fresh_cookie(&server);
  ASSERT_EQ(parts.size(), 3u);
  expect_honoured(parts[0] + "|" + parts[1] + "|" + parts[2], server);
  // Last seen an hour ago.
  const int64_t now = unix_now();
  expect_ignored(parts[0] + "|" + base36(now - 3600) + "|" + base36(now - 3700));
  // Last seen a minute ago, first an hour ago: fine.
  expect_honoured(parts[0] + "|" + base36(now - 60) + "|" + base36(now - 3600), server);
}

TEST_F(StickyDatedCookies, MaxlifeIgnoresACookieThatIsTooOld) {
  ASSERT_TRUE(start(kDated, servers({{"@LIMIT@", "maxlife: 1h"}})));
  std::string server;
  auto parts = fresh_cookie(&server);
  ASSERT_EQ(parts.size(), 3u);
  expect_honoured(parts[0] + "|" + parts[1] + "|" + parts[2], server);
  // First set two hours ago, last seen just now.
  const int64_t now = unix_now();
  expect_ignored(parts[0] + "|" + base36(now) + "|" + base36(now - 7200));
  // First set half an hour ago: fine.
  expect_honoured(parts[0] + "|" + base36(now) + "|" + base36(now - 1800), server);
}

// ===========================================================================
// weir -c

std::string regex_escape(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

class StickyCheck : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { remove_tree(dir_); }
  // `weir -c` of yaml: exit code 1 and exactly one error, on `line`, whose text
  // (lower-cased) contains every word of `words`.
  void expect_error(const std::string& name, const std::string& yaml, int line,
                    const std::vector<std::string>& words) {
    const std::string path = dir_ + "/" + name + ".yaml";
    write_file(path, yaml);
    CommandResult r = run_weir({"-c", "-f", path});
    EXPECT_EQ(r.exit_code, 1) << name << "\n" << r.err;
    EXPECT_EQ(count_matching_lines(r.err, "^" + regex_escape(path) + R"(:\d+:\d+: )"), 1u)
        << name << ": one mistake, one error\n"
        << r.err;
    const std::string prefix = path + ":" + std::to_string(line) + ":";
    const size_t at = r.err.find(prefix);
    ASSERT_NE(at, std::string::npos) << name << ": no error on line " << line << "\n" << r.err;
    const std::string text = r.err.substr(at, r.err.find('\n', at) - at);
    EXPECT_TRUE(std::regex_search(text, std::regex("^" + regex_escape(prefix) + R"(\d+: )")))
        << "file:line:column: " << text;
    for (const std::string& w : words)
      EXPECT_NE(ascii_lower(text).find(w), std::string::npos) << name << ": " << text;
  }
  std::string dir_;
};

TEST_F(StickyCheck, WeirCheckNamesStickAndCookieMistakesWithTheirPlace) {
  expect_error("no_server_key", R"y(stick_tables:
  plain: {type: ip, size: 1k, store: [conn_cnt]}
frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
backends:
  app:
    stick:
      - {match: src, store: src, table: plain}
    servers: {s1: "127.0.0.1:9001"}
)y",
               10, {"server_key"});

  expect_error("tcp_cookie", R"y(frontends:
  db:
    mode: tcp
    bind: ["127.0.0.1:1"]
    default_backend: pg
backends:
  pg:
    mode: tcp
    cookie: SERVERID
    servers: {p1: "127.0.0.1:9002"}
)y",
               9, {"cookie"});

  expect_error("same_value", R"y(frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
backends:
  app:
    cookie: {name: SERVERID, mode: insert}
    servers:
      s1: {address: "127.0.0.1:9001", cookie: same}
      s2: {address: "127.0.0.1:9002", cookie: same}
)y",
               10, {"same"});

  expect_error("samesite_none", R"y(frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
backends:
  app:
    cookie: {name: SERVERID, samesite: None}
    servers: {s1: "127.0.0.1:9001"}
)y",
               7, {"secure"});

  // Everything of the feature, written right, passes.
  const std::string good = dir_ + "/good.yaml";
  write_file(good, R"y(stick_tables:
  sessions: {type: ip, size: 100k, expire: 30m, store: [server_key]}
  jsess: {type: string, key_size: 64, size: 100k, expire: 30m, store: [server_key]}
frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
  cookies:
    bind: ["127.0.0.1:2"]
    default_backend: shop
  db:
    mode: tcp
    bind: ["127.0.0.1:3"]
    default_backend: pg
backends:
  app:
    balance: roundrobin
    stick_redispatch: false
    stick:
      - {match: src, store: src, table: sessions}
      - {store_response: "res.hdr(X-Session)", table: jsess}
      - {match: "req.hdr(X-Session)", table: jsess, if: "{ path_beg /api }"}
    servers: {s1: "127.0.0.1:9001", s2: "127.0.0.1:9002"}
  shop:
    cookie: {name: SERVERID, mode: insert, indirect: true, nocache: true,
             httponly: true, secure: true, samesite: None, domain: example.com,
             attr: ["Partitioned"], maxidle: 30m, maxlife: 8h, dynamic: true}
    servers:
      s1: {address: "127.0.0.1:9001", cookie: a1}
      s2: {address: "127.0.0.1:9002"}
  pg:
    mode: tcp
    stick: {match: src, store: src, table: sessions}
    servers: {p1: "127.0.0.1:9003", p2: "127.0.0.1:9004"}
)y");
  CommandResult r = run_weir({"-c", "-f", good});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace weir::test::sticky
