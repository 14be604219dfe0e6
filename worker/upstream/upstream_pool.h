#pragma once
// A worker thread's idle server connections, per server, for the next request
// of any client of the thread (LIFO: the warmest first). Bounded per server and
// by the thread's share of the worker's descriptor budget (idle connections
// outlive their clients, and accepted clients must never lack a descriptor);
// connections idle longer than kIdleMs are closed by purge().

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "worker/upstream/upstream_connection.h"

namespace weir {

class EventLoop;
class Server;

class UpstreamPool {
 public:
  static constexpr size_t kMaxPerServer = 256;
  static constexpr int64_t kIdleMs = 5000;

  explicit UpstreamPool(EventLoop& loop) : loop_(loop) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An idle connection to `server`, detached from the pool (nullptr: none).
  std::unique_ptr<UpstreamConnection> take(Server* server);
  // Keeps `conn` (a reusable connection, its response read to the end) for the
  // next request, or closes it when the pool is full or closing.
  void put(std::unique_ptr<UpstreamConnection> conn);
  // Closes a connection, idle or not (FIN; with `reset`, RST).
  void close(std::unique_ptr<UpstreamConnection> conn, bool reset = false);
  // An idle connection that the server closed (its event came to the pool).
  void drop(UpstreamConnection* conn);
  // Closes idle connections unused since before `older_than_ms`.
  void purge(int64_t older_than_ms);
  // Closes every idle connection to `server` (its address changed, or it was deleted).
  void close_to(const Server* server);
  // Closes every idle connection and keeps none from now on (the thread drains).
  void close_all();
  void set_limit(size_t limit) { limit_ = limit; }
  size_t idle() const { return count_; }

 private:
  EventLoop& loop_;
  std::unordered_map<Server*, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
  size_t count_ = 0;
  size_t limit_ = 0;  // this thread's share of FdBudget::idle_server_conns
  bool closed_ = false;
};

}  // namespace weir
