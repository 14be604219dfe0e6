// The listening sockets, which the master binds (as root, before anything
// else) and keeps open for its whole life, passing them to each generation; and
// the open-file limit that the workers inherit.

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "common/base/fd_budget.h"
#include "common/base/log.h"
#include "common/base/net.h"
#include "master/master.h"

namespace weir {

bool Master::open_listeners(const Config& cfg, std::map<std::string, ListenSocket>* next) {
  // Takes the socket of `key` from the current set, or binds a new one.
  auto adopt_or_bind = [&](const std::string& key, const SourceMark& mark, const std::string& what,
                           const std::function<UniqueFd(std::string*)>& bind) {
    if (next->count(key)) return true;
    auto it = listeners_.find(key);
    if (it != listeners_.end()) {
      // Never close and reopen a socket that still exists: its backlog holds
      // connections that no worker has accepted yet.
      (*next)[key] = std::move(it->second);
      listeners_.erase(it);
      return true;
    }
    std::string error;
    UniqueFd fd = bind(&error);
    if (!fd) {
      log::error("%s:%d:%d: %s: %s", cfg.source_name.c_str(), mark.line, mark.column, what.c_str(),
                 error.c_str());
      // Give back what was taken from the current set.
      for (auto& [k, v] : *next)
        if (v.fd) listeners_[k] = std::move(v);
      next->clear();
      return false;
    }
    (*next)[key] = ListenSocket{std::move(fd), key};
    return true;
  };
  for (const FrontendConfig& fe : cfg.frontends) {
    for (const BindConfig& b : fe.binds) {
      bool ok = adopt_or_bind(b.key(), b.mark, "frontend '" + fe.name + "'", [&](std::string* e) {
        return net::listen_tcp(b.addr, b.backlog, b.v6only, e);
      });
      if (!ok) return false;
    }
  }
  for (const RuntimeApiEndpoint& ep : cfg.global.runtime_api) {
    bool ok = adopt_or_bind(ep.key(), ep.mark, "runtime_api", [&](std::string* e) {
      return ep.path.empty() ? net::listen_tcp(ep.addr, 64, true, e)
                             : net::listen_unix(ep.path, ep.mode, 64, e);
    });
    if (!ok) return false;
    if (!ep.path.empty() && !apply_socket_access(ep)) return false;
  }
  return true;
}

bool Master::apply_socket_access(const RuntimeApiEndpoint& ep) {
  // Applied at every load, so that a reload that changes mode, owner or group
  // takes effect on a socket kept from the previous generation.
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!ep.owner.empty()) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(ep.owner.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
      log::error("runtime_api %s: no user named %s", ep.path.c_str(), ep.owner.c_str());
      return false;
    }
    uid = pw.pw_uid;
  }
  if (!ep.group.empty()) {
    struct group gr {};
    struct group* found = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(ep.group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) {
      log::error("runtime_api %s: no group named %s", ep.path.c_str(), ep.group.c_str());
      return false;
    }
    gid = gr.gr_gid;
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      ::chown(ep.path.c_str(), uid, gid) != 0) {
    log::error("runtime_api %s: cannot set owner %s group %s: %s", ep.path.c_str(),
               ep.owner.empty() ? "-" : ep.owner.c_str(), ep.group.empty() ? "-" : ep.group.c_str(),
               std::strerror(errno));
    return false;
  }
  if (::chmod(ep.path.c_str(), ep.mode) != 0) {
    log::error("runtime_api %s: cannot set mode %o: %s", ep.path.c_str(), ep.mode,
               std::strerror(errno));
    return false;
  }
  return true;
}

bool Master::apply_fd_limit(const Config& cfg) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    log::warning("cannot read the open-file limit: %s", std::strerror(errno));
    return true;
  }
  // Raise the soft limit toward what the wanted maxconn needs (never above the
  // hard limit, which only root can raise); workers inherit it.
  FdBudget b = plan_fd_budget(cfg, rl.rlim_cur);
  const uint64_t need = fds_needed(cfg, b.wanted);
  if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
    rlimit next = rl;
    next.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &next) == 0) {
      rl = next;
      b = plan_fd_budget(cfg, rl.rlim_cur);
    }
  }
  const auto limit = static_cast<unsigned long long>(rl.rlim_cur);
  const auto hard = static_cast<unsigned long long>(rl.rlim_max);
  if (b.maxconn == 0) {
    log::error(
        "the open-file limit of %llu (hard limit %llu) is too low: this configuration needs "
        "%llu descriptors for its listeners, logs and checks, plus at least 2 per connection; "
        "raise LimitNOFILE= in the systemd unit or `ulimit -n` before starting weir",
        limit, hard, static_cast<unsigned long long>(b.reserved));
    return false;
  }
  if (b.lowered()) {
    log::warning(
        "global.maxconn %u needs %llu open files but the limit is %llu (hard limit %llu): weir "
        "runs with maxconn %u; raise LimitNOFILE= in the systemd unit or `ulimit -n` (soft and "
        "hard) before starting weir, or set a lower global.maxconn",
        b.wanted, static_cast<unsigned long long>(need), limit, hard, b.maxconn);
  } else if (b.explicit_maxconn) {
    log::notice("maxconn %u (global.maxconn; the open-file limit of %llu holds it)", b.maxconn,
                limit);
  } else {
    log::notice("maxconn %u: %s the open-file limit of %llu%s (global.maxconn is not set)",
                b.maxconn, b.maxconn < b.wanted ? "the most" : "the default;", limit,
                b.maxconn < b.wanted ? " holds" : " holds it");
  }
  return true;
}

}  // namespace weir
