#pragma once
// A worker process's link to the peers agent (peers/agent.h): one thread of
// its own with one ZeroMQ DEALER socket, so that no event loop ever waits for
// the agent.
//
// The tables' journal (common/stick/table.h) tells the link which entries
// changed: each event-loop thread appends the key to a queue of its own, once
// until the entry is sent (later changes fold into the pending one and are
// counted as coalesced), and wakes the link. The link drains the queues into
// DELTA batches of up to 256 entries, as fast as the agent takes them; while
// the agent is away or slow the changes keep folding into their entries, so
// what waits is bounded by the tables' sizes, never by the traffic.
//
// From the agent it takes the snapshot (at start, before the worker reports
// Ready), the other processes' batches and heartbeats. A heartbeat from a new
// agent (another incarnation: the master respawned it) makes the link refill
// it with this process's tables; a silent agent (one second) makes it say
// hello again until one answers.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/proto/peers.pb.h"
#include "common/stick/table.h"

namespace weir {

class PeersLink final : public stick::Journal {
 public:
  PeersLink(std::vector<std::shared_ptr<stick::Table>> tables, std::string run_dir, int generation);
  ~PeersLink();
  PeersLink(const PeersLink&) = delete;
  PeersLink& operator=(const PeersLink&) = delete;

  // Connects and starts the thread; the tables report to this link from now on.
  bool start(std::string* error);
  // Waits until the agent's snapshot is in the tables, at most timeout_ms, or
  // silent_ms when the agent never answers at all; false when it did not come
  // (the worker serves anyway and catches up).
  bool wait_snapshot(int64_t timeout_ms, int64_t silent_ms);
  // Sends what is pending and says goodbye (the process exits); waits at most
  // timeout_ms for the agent to take it.
  void finish(int64_t timeout_ms);

  // The process's link, when there is one (`show peers`, /metrics).
  static PeersLink* current();

  struct Stats {
    bool linked = false;       // a heartbeat came within the last second
    bool snapshot = false;     // the start-up snapshot arrived
    uint64_t incarnation = 0;  // the agent's
    int32_t agent_pid = 0;
    uint64_t sent = 0;                    // entry updates sent to the agent
    uint64_t received = 0;                // entry updates applied from the agent
    uint64_t coalesced = 0;               // changes folded into a pending update
    uint64_t pending = 0;                 // entries waiting to be sent
    uint64_t refills = 0;                 // times this process refilled a new agent
    std::vector<proto::LinkStats> links;  // the agent's view, from its last heartbeat
    std::string local_node;               // this node's name in its cluster (empty: none)
    std::vector<proto::NodeStats> nodes;  // the agent's view of the other nodes
  };
  Stats stats();

  // Server states set here at runtime go to the agent (any thread).
  void share_servers(proto::ServerRecord r);
  // Called on the link's thread with the server records the agent sends (its
  // store when this process links, then the changes of other processes and
  // nodes). Any thread; null: no longer (the worker goes).
  void on_servers(std::function<void(proto::ServerRecords)> fn) {
    std::lock_guard<std::mutex> g(servers_mu_);
    on_servers_ = std::move(fn);
  }

  // stick::Journal (event-loop threads, under an entry's lock).
  void changed(stick::Table& t, std::string_view key) override;
  void coalesced() override;
  void erased(stick::Table& t, std::string_view key, const stick::Epoch& e) override;

 private:
  struct Item {
    uint32_t table = 0;
    bool erased = false;
    std::string key;
    stick::Epoch epoch;  // an erase's
  };
  struct ThreadQueue {
    std::mutex mu;
    std::vector<Item> items;
    std::atomic<uint64_t> coalesced{0};
  };
  ThreadQueue& my_queue();
  void enqueue(stick::Table& t, std::string_view key, bool erased, const stick::Epoch& e = {});
  void wake();

  void run();
  void receive_all();
  void on_message(const proto::PeersMessage& m);
  // Moves queued keys into the backlog and sends batches while the agent takes them.
  void flush();
  bool writable();
  // Queues m toward the agent, or keeps it for later (stalled_) when the
  // agent's queue is full; false then.
  bool send(const proto::PeersMessage& m);
  bool any_queued();
  // Hello, then (`refill`) a refill of every table and Synced (asking for the
  // snapshot until one came); without it, a hello that asks a silent agent
  // whether it still has this process's tables.
  void introduce(bool refill);
  static constexpr int64_t kNever = int64_t{1} << 40;
  void heartbeat();

  std::vector<std::shared_ptr<stick::Table>> tables_;
  std::unordered_map<const stick::Table*, uint32_t> index_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::string run_dir_;
  int generation_;

  void* ctx_ = nullptr;
  void* sock_ = nullptr;
  int wake_fd_ = -1;
  std::atomic<bool> wake_armed_{true};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int64_t finish_timeout_ms_ = 0;
  std::deque<std::string> stalled_;  // serialized messages the agent's queue refused, in order

  std::mutex queues_mu_;
  std::vector<std::unique_ptr<ThreadQueue>> queues_;
  std::vector<Item> taken_;    // the link thread's: a queue's items, swapped out
  std::vector<Item> backlog_;  // the link thread's
  size_t backlog_pos_ = 0;
  std::atomic<uint64_t> backlog_size_{0};

  std::mutex servers_mu_;
  std::vector<proto::ServerRecord> servers_out_;  // to send, in order
  std::function<void(proto::ServerRecords)> on_servers_;

  std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  bool snapshot_ = false;

  // The link thread's, published to stats() under stats_mu_.
  std::mutex stats_mu_;
  uint64_t incarnation_ = 0;
  int32_t agent_pid_ = 0;
  int64_t last_heard_ms_ = 0;
  int64_t last_hello_ms_ = 0;
  int64_t next_heartbeat_ms_ = 0;
  bool introduced_ = false;  // a hello went to the agent
  bool want_full_ = true;    // the agent lacks this process's tables: hello, refill, synced
  int64_t last_full_ms_ = -kNever;
  const int32_t pid_;
  bool have_snapshot_ = false;  // snapshot_, the link thread's copy
  std::atomic<uint64_t> sent_{0}, received_{0}, refills_{0};
  std::atomic<bool> heard_{false};  // a heartbeat came from an agent
  std::vector<proto::LinkStats> agent_links_;
  std::vector<proto::NodeStats> agent_nodes_;
  std::string local_node_;
};

}  // namespace weir
