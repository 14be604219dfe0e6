#pragma once
// The sticky-session tests' fixture (sticky_test.cpp, sticky_smoke_test.cpp):
// four origins that answer with their name (X-Server), requests on new
// connections, curl with a cookie jar as a user runs it, server states through
// the runtime API, and reloads with a new configuration.

#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/stick_tables.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test::sticky {

// What curl saw of one response (`curl -D -`).
struct CurlReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string raw;  // curl's whole output, for failure messages
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (iequals(k, name)) return v;
    return {};
  }
  std::vector<std::string> set_cookies() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers)
      if (iequals(k, "Set-Cookie")) out.push_back(v);
    return out;
  }
  // X-Server of a 200, otherwise "status N".
  std::string server() const {
    return status == 200 ? header("X-Server") : "status " + std::to_string(status);
  }
};

inline CurlReply parse_curl(const std::string& out) {
  CurlReply r;
  r.raw = out;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::string line = out.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {  // a (new) status line
      r.headers.clear();
      size_t sp = line.find(' ');
      r.status = sp == std::string::npos ? 0 : std::atoi(line.c_str() + sp + 1);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    r.headers.emplace_back(line.substr(0, colon),
                           std::string(trim_ows(std::string_view(line).substr(colon + 1))));
  }
  return r;
}

// "NAME=VALUE; Attr; Attr=x" -> "VALUE" when the cookie is NAME, else nullopt.
inline std::optional<std::string> cookie_value(const std::string& set_cookie,
                                               const std::string& name) {
  if (set_cookie.rfind(name + "=", 0) != 0) return std::nullopt;
  const size_t start = name.size() + 1;
  const size_t semi = set_cookie.find(';', start);
  return std::string(trim_ows(
      set_cookie.substr(start, semi == std::string::npos ? std::string::npos : semi - start)));
}

// The attributes after NAME=VALUE, trimmed and lower-cased ("path=/", "httponly", ...).
inline std::set<std::string> cookie_attributes(const std::string& set_cookie) {
  std::set<std::string> out;
  size_t pos = set_cookie.find(';');
  while (pos != std::string::npos) {
    const size_t next = set_cookie.find(';', pos + 1);
    const std::string attr(trim_ows(set_cookie.substr(
        pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1)));
    if (!attr.empty()) out.insert(ascii_lower(attr));
    pos = next;
  }
  return out;
}

// The one Set-Cookie of `name` in the reply ("" when there is none; "<2 of them>" when more).
inline std::string the_set_cookie(const CurlReply& r, const std::string& name) {
  std::string found;
  int n = 0;
  for (const std::string& c : r.set_cookies()) {
    if (cookie_value(c, name)) {
      found = c;
      ++n;
    }
  }
  return n > 1 ? "<" + std::to_string(n) + " of them>" : found;
}

inline std::string base36(int64_t v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, 36);
  (void)ec;
  return std::string(buf, p);
}
inline int64_t from_base36(const std::string& s) {
  int64_t v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v, 36);
  return v;
}
inline int64_t unix_now() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t at = s.find(sep, pos);
    out.push_back(s.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos) return out;
    pos = at + 1;
  }
}

class Sticky : public StickTest {
 protected:
  // @S1@..@S4@: the origins' addresses; @PORT2@: a second port.
  // `more` is replaced first, so that its values may name @S1@...
  Vars servers(const Vars& more = {}) {
    Vars v = more;
    v.insert(v.end(), {{"@S1@", s1_.address()},
                       {"@S2@", s2_.address()},
                       {"@S3@", s3_.address()},
                       {"@S4@", s4_.address()},
                       {"@PORT2@", std::to_string(port2_)}});
    return v;
  }
  OriginServer& origin(const std::string& name) {
    if (name == "s1") return s1_;
    if (name == "s2") return s2_;
    if (name == "s3") return s3_;
    return s4_;
  }

  // One request on a new connection: the X-Server of a 200 ("status N"
  // otherwise, "none" without a response).
  std::string server_of(const Headers& headers = {}, const std::string& target = "/",
                        uint16_t port = 0, const std::string& source = "") const {
    try {
      HttpClient c(port ? port : port_, "127.0.0.1", source);
      Headers h = headers;
      h.emplace_back("Connection", "close");
      auto r = c.request("GET", target, h);
      if (!r) return "none";
      return r->status == 200 ? r->header("X-Server") : "status " + std::to_string(r->status);
    } catch (const std::exception&) {
      return "none";
    }
  }
  std::string user(const std::string& name) const { return server_of({{"X-User", name}}); }

  // curl as a user runs it: `curl -s -D - -o /dev/null ARGS URL`.
  CurlReply curl(const std::vector<std::string>& args, const std::string& target = "/",
                 uint16_t port = 0) const {
    std::vector<std::string> argv = {"curl", "-s", "-S", "--max-time", "10",
                                     "-D",   "-",  "-o", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("http://127.0.0.1:" + std::to_string(port ? port : port_) + target);
    return parse_curl(run_command(argv, 20000).out);
  }
  std::string jar(const std::string& who) const { return dir_ + "/" + who + ".jar"; }
  // A request with the user's cookie jar (read and written).
  CurlReply with_jar(const std::string& who, const std::string& target = "/",
                     uint16_t port = 0) const {
    return curl({"-c", jar(who), "-b", jar(who)}, target, port);
  }
  // A request with exactly this Cookie header (no jar).
  CurlReply with_cookie(const std::string& cookie, const std::string& target = "/",
                        uint16_t port = 0) const {
    return curl({"-b", cookie}, target, port);
  }

  bool set_state(const std::string& server, const std::string& state) const {
    CommandResult r = weirctl({"-s", admin(), "set", "server", server, "state", state});
    EXPECT_EQ(r.exit_code, 0) << "set server " << server << " state " << state << ": " << r.out;
    return r.exit_code == 0;
  }
  std::string stat_status(const std::string& backend, const std::string& server) const {
    for (auto& row : parse_stat_csv(api("show stat")))
      if (row["pxname"] == backend && row["svname"] == server) return row["status"];
    return "<no row>";
  }

  // Rewrites the configuration and reloads (SIGHUP); returns once the new
  // generation is ready and answers the runtime API.
  void reload_with(const std::string& body, const Vars& vars) {
    const int gen = weir_->current_generation();
    weir_->write_config(config(body, vars));
    weir_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return weir_->current_generation() > gen; }, 30000))
        << weir_->stderr_text();
    const std::string want = "Generation: " + std::to_string(weir_->current_generation());
    ASSERT_TRUE(
        wait_until([&] { return api("show info").find(want) != std::string::npos; }, 10000));
  }

  OriginServer s1_{"s1"}, s2_{"s2"}, s3_{"s3"}, s4_{"s4"};
  uint16_t port2_ = free_tcp_port();
};

inline std::set<std::string> distinct(const std::map<std::string, std::string>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(v);
  return out;
}

// ===========================================================================
// Stick rules

}  // namespace weir::test::sticky
