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
      if (!s->selectable() || (pass == 0 && tried.has(s->index()))) continue;
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

Backend::Backend(const BackendConfig& cfg) : cfg_(cfg) {
  std::vector<Server*> ptrs;
  int index = 0;
  for (const ServerConfig& sc : cfg_.servers) {
    servers_.push_back(std::make_unique<Server>(sc, index++));
    ptrs.push_back(servers_.back().get());
  }
  lb_ = std::make_unique<SmoothRoundRobin>(std::move(ptrs));
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

Server* Backend::find_server(std::string_view name) {
  for (auto& s : servers_)
    if (s->name() == name) return s.get();
  return nullptr;
}

Server* Backend::pick_server(const TriedServers& tried) {
  std::lock_guard lock(lb_mu_);
  return lb_->pick(tried);
}

}  // namespace weir
