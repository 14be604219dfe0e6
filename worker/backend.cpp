#include "worker/backend.h"

namespace weir {

SmoothRoundRobin::SmoothRoundRobin(std::vector<Server*> servers)
    : servers_(std::move(servers)), current_(servers_.size(), 0) {}

Server* SmoothRoundRobin::pick(const TriedServers& tried) {
  // Two passes: first among servers not yet tried, then (if every one was tried)
  // among all of them, so a retry still lands somewhere when retries > servers.
  for (int pass = 0; pass < 2; ++pass) {
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < servers_.size(); ++i) {
      Server* s = servers_[i];
      if (!s->selectable() || !s->has_slot() || (pass == 0 && tried.has(s->index()))) continue;
      int64_t w = s->weight();
      current_[i] += w;
      total += w;
      if (best < 0 || current_[i] > current_[static_cast<size_t>(best)]) best = static_cast<int>(i);
    }
    if (best >= 0) {
      current_[static_cast<size_t>(best)] -= total;
      return servers_[static_cast<size_t>(best)];
    }
  }
  return nullptr;
}

Server::Server(const ServerConfig& cfg, int index, int threads)
    : cfg_(cfg),
      index_(index),
      addr_(cfg.addr),
      addr_text_(cfg.address_text),
      weight_(cfg.weight),
      maxconn_(cfg.maxconn),
      last_change_ms_(0),
      counters_(threads) {}

SockAddr Server::addr() const {
  std::lock_guard lock(addr_mu_);
  return addr_;
}

std::string Server::addr_text() const {
  std::lock_guard lock(addr_mu_);
  return addr_text_;
}

void Server::set_addr(const SockAddr& addr, std::string text) {
  std::lock_guard lock(addr_mu_);
  addr_ = addr;
  addr_text_ = std::move(text);
}

Backend::Backend(const BackendConfig& cfg, int threads)
    : cfg_(cfg), threads_(threads), counters_(threads) {
  for (const ServerConfig& sc : cfg_.servers) {
    servers_.push_back(std::make_unique<Server>(sc, next_index_++, threads_));
  }
  rebuild_lb();
}

void Backend::rebuild_lb() {
  std::vector<Server*> ptrs;
  for (auto& s : servers_) ptrs.push_back(s.get());
  lb_ = std::make_unique<SmoothRoundRobin>(std::move(ptrs));
}

std::vector<Server*> Backend::servers() const {
  std::lock_guard lock(lb_mu_);
  std::vector<Server*> out;
  out.reserve(servers_.size());
  for (auto& s : servers_) out.push_back(s.get());
  return out;
}

Server* Backend::add_server(const ServerConfig& cfg, AdminState state, int64_t now_ms,
                            std::string* error) {
  std::lock_guard lock(lb_mu_);
  for (auto& s : servers_) {
    if (s->name() == cfg.name) {
      *error = "backend '" + cfg_.name + "' already has a server named '" + cfg.name + "'";
      return nullptr;
    }
  }
  auto server = std::make_unique<Server>(cfg, next_index_++, threads_);
  server->set_admin_state(state, now_ms);
  Server* raw = server.get();
  servers_.push_back(std::move(server));
  rebuild_lb();
  return raw;
}

bool Backend::delete_server(std::string_view name, std::string* error) {
  std::lock_guard lock(lb_mu_);
  for (auto it = servers_.begin(); it != servers_.end(); ++it) {
    Server* s = it->get();
    if (s->name() != name) continue;
    if (s->admin_state() != AdminState::kMaint) {
      *error = "server is in state " + std::string(admin_state_name(s->admin_state())) +
               "; put it in maint first ('set server " + cfg_.name + "/" + s->name() +
               " state maint')";
      return false;
    }
    // Under lb_mu_ with the server in maint, nothing can acquire it any more, so
    // a zero here stays zero.
    if (int64_t n = s->counters().current(); n > 0) {
      *error = "server still has " + std::to_string(n) +
               " request(s) or connection(s); wait for them to end or use "
               "'shutdown sessions server " +
               cfg_.name + "/" + s->name() + "'";
      return false;
    }
    s->mark_deleted();
    retired_.push_back(std::move(*it));
    servers_.erase(it);
    rebuild_lb();
    return true;
  }
  *error = "backend '" + cfg_.name + "' has no server named '" + std::string(name) + "'";
  return false;
}

const char* admin_state_name(AdminState s) {
  switch (s) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "?";
}

void Server::set_admin_state(AdminState s, int64_t now_ms) {
  if (admin_.exchange(s, std::memory_order_relaxed) != s) {
    last_change_ms_.store(now_ms, std::memory_order_relaxed);
  }
}

Server* Backend::find_server(std::string_view name) const {
  std::lock_guard lock(lb_mu_);
  for (auto& s : servers_)
    if (s->name() == name) return s.get();
  return nullptr;
}

Server* Backend::acquire_server(const TriedServers& tried) {
  std::lock_guard lock(lb_mu_);
  Server* s = lb_->pick(tried);
  if (s) {
    // Taken under the same lock as the has_slot() test in pick(), so two threads
    // can never both take a server's last slot.
    s->counters().enter();
    counters_.enter();
  }
  return s;
}

void Backend::release_server(Server* s) {
  s->counters().leave();
  counters_.leave();
}

}  // namespace weir
