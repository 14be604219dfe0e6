#include "worker/upstream/upstream_pool.h"

#include "common/event/event_loop.h"

namespace weir {

UpstreamPool::~UpstreamPool() {
  // The thread is going away: the loop's retire list is freed after this.
  for (auto& [server, list] : idle_) {
    for (auto& c : list) c->pool_ = nullptr;
  }
  idle_.clear();
}

std::unique_ptr<UpstreamConnection> UpstreamPool::take(Server* server) {
  auto it = idle_.find(server);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  std::unique_ptr<UpstreamConnection> c = std::move(it->second.back());
  it->second.pop_back();
  --count_;
  c->pool_ = nullptr;
  return c;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConnection> conn) {
  if (closed_ || count_ >= limit_) {
    close(std::move(conn));
    return;
  }
  auto& list = idle_[conn->server()];
  if (list.size() >= kMaxPerServer) {
    close(std::move(list.front()));
    list.erase(list.begin());
    --count_;
  }
  ++count_;
  conn->attach(nullptr);
  conn->pool_ = this;
  conn->idle_since_ = loop_.now_ms();
  list.push_back(std::move(conn));
}

void UpstreamPool::close(std::unique_ptr<UpstreamConnection> conn, bool reset) {
  if (reset) {
    conn->stream().abort();
  } else {
    conn->stream().close();  // closing the fd removes it from epoll
  }
  conn->attach(nullptr);
  conn->pool_ = nullptr;
  loop_.retire(std::move(conn));
}

void UpstreamPool::drop(UpstreamConnection* conn) {
  auto it = idle_.find(conn->server());
  if (it == idle_.end()) return;
  auto& list = it->second;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].get() == conn) {
      std::unique_ptr<UpstreamConnection> c = std::move(list[i]);
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      --count_;
      close(std::move(c));
      return;
    }
  }
}

void UpstreamPool::purge(int64_t older_than_ms) {
  for (auto& [server, list] : idle_) {
    while (!list.empty() && list.front()->idle_since_ < older_than_ms) {
      close(std::move(list.front()));
      list.erase(list.begin());
      --count_;
    }
  }
}

void UpstreamPool::close_to(const Server* server) {
  auto it = idle_.find(const_cast<Server*>(server));
  if (it == idle_.end()) return;
  count_ -= it->second.size();
  for (auto& c : it->second) close(std::move(c));
  idle_.erase(it);
}

void UpstreamPool::close_all() {
  closed_ = true;
  for (auto& [server, list] : idle_) {
    for (auto& c : list) close(std::move(c));
  }
  idle_.clear();
  count_ = 0;
}

}  // namespace weir
