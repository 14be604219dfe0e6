// A worker process's link to the peers agent (link.h).

#include "worker/peers/link.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include "common/base/log.h"
#include "common/stick/sync.h"

namespace weir {
namespace {

constexpr int64_t kHeartbeatMs = 250;
constexpr int64_t kSilentAgentMs = 1000;  // no heartbeat for this long: say hello again
constexpr int64_t kHelloRetryMs = 300;
// After a whole introduction, heartbeats that do not show it yet (sent before
// the agent read it) are not a reason for another one, for this long.
constexpr int64_t kIntroductionGraceMs = 1000;
constexpr int kSendHighWater = 1000;  // messages queued toward the agent
constexpr long kGatherMs = 1;         // after a wake-up, before the changes are taken

std::atomic<PeersLink*> g_current{nullptr};

struct LocalQueue {
  const PeersLink* owner = nullptr;
  void* queue = nullptr;
};
thread_local LocalQueue tl_queue;

int64_t mono_ms() {
  return stick::clock_now().mono_ms;
}

}  // namespace

PeersLink::PeersLink(std::vector<std::shared_ptr<stick::Table>> tables, std::string run_dir,
                     int generation)
    : tables_(std::move(tables)),
      run_dir_(std::move(run_dir)),
      generation_(generation),
      pid_(static_cast<int32_t>(getpid())) {
  for (size_t i = 0; i < tables_.size(); ++i) {
    index_[tables_[i].get()] = static_cast<uint32_t>(i);
    by_name_[tables_[i]->name()] = static_cast<uint32_t>(i);
  }
}

PeersLink::~PeersLink() {
  if (thread_.joinable()) finish(0);
  for (auto& t : tables_) t->set_journal(nullptr);
  PeersLink* self = this;
  g_current.compare_exchange_strong(self, nullptr);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

PeersLink* PeersLink::current() {
  return g_current.load(std::memory_order_acquire);
}

bool PeersLink::start(std::string* error) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    *error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  ctx_ = zmq_ctx_new();
  sock_ = ctx_ ? zmq_socket(ctx_, ZMQ_DEALER) : nullptr;
  if (!sock_) {
    *error = std::string("zmq socket: ") + zmq_strerror(zmq_errno());
    return false;
  }
  // A routing id of its own, stable across reconnections: the agent knows
  // the process again after its socket reconnects.
  const std::string id = "w" + std::to_string(getpid());
  const int one = 1, hwm = kSendHighWater, zero = 0;
  zmq_setsockopt(sock_, ZMQ_ROUTING_ID, id.data(), id.size());
  zmq_setsockopt(sock_, ZMQ_IMMEDIATE, &one, sizeof one);  // no queue toward an absent agent
  zmq_setsockopt(sock_, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(sock_, ZMQ_RCVHWM, &zero, sizeof zero);
  const int reconnect = 100;
  zmq_setsockopt(sock_, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
  const std::string endpoint = "ipc://" + run_dir_ + "/peers.sock";
  if (zmq_connect(sock_, endpoint.c_str()) != 0) {
    *error = "cannot connect to " + endpoint + ": " + zmq_strerror(zmq_errno());
    return false;
  }
  for (auto& t : tables_) t->set_journal(this);
  g_current.store(this, std::memory_order_release);
  next_heartbeat_ms_ = mono_ms();
  thread_ = std::thread([this] { run(); });
  return true;
}

bool PeersLink::wait_snapshot(int64_t timeout_ms, int64_t silent_ms) {
  // An agent that answers (it heartbeats as soon as it hears the hello) gets
  // the whole timeout to send a large snapshot; one that says nothing at all
  // (stopped, hung) only silent_ms.
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> g(snap_mu_);
  for (;;) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    const int64_t limit = heard_.load() ? timeout_ms : std::min(timeout_ms, silent_ms);
    if (snapshot_) return true;
    if (waited >= limit) return false;
    snap_cv_.wait_for(g, std::chrono::milliseconds(std::min<int64_t>(limit - waited, 50)));
  }
}

void PeersLink::finish(int64_t timeout_ms) {
  if (!thread_.joinable()) return;
  finish_timeout_ms_ = timeout_ms;
  stop_.store(true);
  wake();
  thread_.join();
}

// ---- the journal (event-loop threads)

PeersLink::ThreadQueue& PeersLink::my_queue() {
  if (tl_queue.owner != this) {
    auto q = std::make_unique<ThreadQueue>();
    tl_queue = {this, q.get()};
    std::lock_guard<std::mutex> g(queues_mu_);
    queues_.push_back(std::move(q));
  }
  return *static_cast<ThreadQueue*>(tl_queue.queue);
}

void PeersLink::enqueue(stick::Table& t, std::string_view key, bool erased, const stick::Epoch& e) {
  auto it = index_.find(&t);
  if (it == index_.end()) return;
  ThreadQueue& q = my_queue();
  {
    std::lock_guard<std::mutex> g(q.mu);
    q.items.push_back({it->second, erased, std::string(key), e});
  }
  wake();
}

void PeersLink::wake() {
  // One write per round of the link thread, whatever the number of changes.
  if (wake_armed_.exchange(false, std::memory_order_acq_rel)) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

void PeersLink::changed(stick::Table& t, std::string_view key) {
  enqueue(t, key, false);
}

void PeersLink::erased(stick::Table& t, std::string_view key, const stick::Epoch& e) {
  enqueue(t, key, true, e);
}

void PeersLink::share_servers(proto::ServerRecord r) {
  {
    std::lock_guard<std::mutex> g(servers_mu_);
    servers_out_.push_back(std::move(r));
  }
  wake();
}

void PeersLink::coalesced() {
  my_queue().coalesced.fetch_add(1, std::memory_order_relaxed);
}

// ---- the link thread

void PeersLink::run() {
  while (!stop_.load()) {
    zmq_pollitem_t items[2] = {{sock_, 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    const int64_t now = mono_ms();
    long timeout =
        static_cast<long>(std::clamp<int64_t>(next_heartbeat_ms_ - now, 0, kHeartbeatMs));
    if ((backlog_pos_ < backlog_.size() && have_snapshot_) || !stalled_.empty() || !introduced_) {
      timeout = std::min(timeout, 5L);
    }
    zmq_poll(items, 2, timeout);
    receive_all();
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t n = 0;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &n, sizeof n);
      // Changes gather a moment before they go: fuller batches, and the
      // event loops (not re-armed yet) do not write to wake_fd_ meanwhile.
      zmq_pollitem_t agent = {sock_, 0, ZMQ_POLLIN, 0};
      zmq_poll(&agent, 1, kGatherMs);
      receive_all();
    }
    wake_armed_.store(true, std::memory_order_release);
    flush();
    heartbeat();
  }
  // The process exits: what is pending goes, then the goodbye.
  const int64_t deadline = mono_ms() + finish_timeout_ms_;
  for (;;) {
    flush();
    receive_all();
    const bool empty = backlog_pos_ >= backlog_.size() && stalled_.empty() && !any_queued();
    if (empty || mono_ms() >= deadline) break;
    zmq_pollitem_t item = {sock_, 0, ZMQ_POLLOUT, 0};
    zmq_poll(&item, 1, 5);
  }
  proto::PeersMessage bye;
  bye.mutable_bye();
  send(bye);
  const int linger = static_cast<int>(std::max<int64_t>(0, deadline - mono_ms()));
  zmq_setsockopt(sock_, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(sock_);
  sock_ = nullptr;
  zmq_ctx_term(ctx_);
  ctx_ = nullptr;
}

bool PeersLink::any_queued() {
  std::lock_guard<std::mutex> g(queues_mu_);
  for (auto& q : queues_) {
    std::lock_guard<std::mutex> gq(q->mu);
    if (!q->items.empty()) return true;
  }
  return false;
}

void PeersLink::receive_all() {
  for (int i = 0; i < 4096; ++i) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock_, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return;
    }
    // On an arena: a snapshot or resync batch holds many rows, each a message
    // of its own, all freed at once here.
    google::protobuf::Arena arena;
    proto::PeersMessage& m = *google::protobuf::Arena::CreateMessage<proto::PeersMessage>(&arena);
    const bool ok = m.ParseFromArray(zmq_msg_data(&msg), static_cast<int>(zmq_msg_size(&msg)));
    zmq_msg_close(&msg);
    if (ok) {
      on_message(m);
    } else {
      log::warning("peers link: dropping an undecodable message from the agent");
    }
  }
}

void PeersLink::on_message(const proto::PeersMessage& m) {
  const int64_t now = mono_ms();
  switch (m.body_case()) {
    case proto::PeersMessage::kBatch: {
      auto it = by_name_.find(m.batch().table());
      if (it == by_name_.end()) break;  // a table this generation does not have
      const stick::sync::ApplyResult r =
          stick::sync::apply(*tables_[it->second], m.batch(), stick::clock_now());
      received_.fetch_add(r.rows, std::memory_order_relaxed);
      break;
    }
    case proto::PeersMessage::kPresize:
      for (const proto::TableSize& size : m.presize().tables()) {
        auto it = by_name_.find(size.table());
        if (it != by_name_.end()) tables_[it->second]->presize(static_cast<size_t>(size.entries()));
      }
      break;
    case proto::PeersMessage::kMark:
      send(m);  // everything before it is applied: the same mark back
      break;
    case proto::PeersMessage::kServers: {
      std::lock_guard<std::mutex> g(servers_mu_);
      if (on_servers_) on_servers_(m.servers());
      break;
    }
    case proto::PeersMessage::kSnapshotDone: {
      std::lock_guard<std::mutex> g(snap_mu_);
      if (!snapshot_) {
        log::info("peers link: snapshot of %llu entries loaded",
                  static_cast<unsigned long long>(m.snapshot_done().entries()));
      }
      snapshot_ = true;
      have_snapshot_ = true;
      snap_cv_.notify_all();
      break;
    }
    case proto::PeersMessage::kHeartbeat: {
      const proto::Heartbeat& hb = m.heartbeat();
      std::lock_guard<std::mutex> g(stats_mu_);
      last_heard_ms_ = now;
      const bool new_agent = incarnation_ != 0 && hb.incarnation() != incarnation_;
      heard_.store(true);
      incarnation_ = hb.incarnation();
      agent_pid_ = hb.agent_pid();
      agent_links_.assign(hb.links().begin(), hb.links().end());
      agent_nodes_.assign(hb.nodes().begin(), hb.nodes().end());
      local_node_ = hb.local_node();
      // Does this agent have this process's tables? Not when it is new (the
      // master respawned it) or never got the whole introduction.
      bool known = false;
      for (const proto::LinkStats& l : hb.links()) known |= l.pid() == pid_ && l.synced();
      if (new_agent && !want_full_) {
        log::notice("peers link: a new peers agent (pid %d); refilling it", hb.agent_pid());
        want_full_ = true;
      } else if (!known && !want_full_ && now - last_full_ms_ > kIntroductionGraceMs) {
        want_full_ = true;
      }
      break;
    }
    default:
      break;
  }
}

bool PeersLink::writable() {
  if (!stalled_.empty()) return false;
  int events = 0;
  size_t len = sizeof events;
  return zmq_getsockopt(sock_, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLOUT);
}

bool PeersLink::send(const proto::PeersMessage& m) {
  std::string bytes = m.SerializeAsString();
  if (!stalled_.empty()) {
    stalled_.push_back(std::move(bytes));
    return false;
  }
  if (zmq_send(sock_, bytes.data(), bytes.size(), ZMQ_DONTWAIT) >= 0) return true;
  stalled_.push_back(std::move(bytes));
  return false;
}

void PeersLink::flush() {
  // Messages the agent's queue refused earlier go first, in order.
  while (!stalled_.empty()) {
    const std::string& bytes = stalled_.front();
    if (zmq_send(sock_, bytes.data(), bytes.size(), ZMQ_DONTWAIT) < 0) return;
    stalled_.pop_front();
  }
  {
    // Each queue's lock is held for a swap only: the event loops never wait
    // for this thread's copying.
    std::lock_guard<std::mutex> g(queues_mu_);
    for (auto& q : queues_) {
      {
        std::lock_guard<std::mutex> gq(q->mu);
        if (q->items.empty()) continue;
        q->items.swap(taken_);
      }
      if (backlog_pos_ >= backlog_.size()) {
        backlog_.clear();
        backlog_pos_ = 0;
      }
      std::move(taken_.begin(), taken_.end(), std::back_inserter(backlog_));
      taken_.clear();
    }
  }
  backlog_size_.store(backlog_.size() - backlog_pos_, std::memory_order_relaxed);
  if (!introduced_) return;  // the agent hears of the changes after the hello
  {
    std::vector<proto::ServerRecord> out;
    {
      std::lock_guard<std::mutex> g(servers_mu_);
      out.swap(servers_out_);
    }
    if (!out.empty()) {
      proto::PeersMessage m;
      for (proto::ServerRecord& r : out) *m.mutable_servers()->add_records() = std::move(r);
      send(m);  // kept in stalled_ when the agent's queue is full
    }
  }
  // Until the snapshot this process asked for has come, what it counts stays
  // local (unsent): the snapshot's totals replace the others' part of each
  // entry, so a DELTA that the agent applied after making the snapshot would
  // be lost here. Unsent counts survive the snapshot and go after it.
  if (!have_snapshot_) return;
  const stick::Now now = stick::clock_now();
  std::vector<std::unique_ptr<stick::sync::BatchWriter>> writers(tables_.size());
  auto ship = [&](stick::sync::BatchWriter& w) {
    proto::PeersMessage m;
    const auto rows = static_cast<uint64_t>(w.rows());
    *m.mutable_batch() = w.take();
    send(m);
    sent_.fetch_add(rows, std::memory_order_relaxed);
  };
  while (backlog_pos_ < backlog_.size() && writable()) {
    // One round: up to a batch's worth of entries, taken only now that the
    // agent's queue has room (taking an entry folds what it counted).
    const size_t end = std::min(backlog_.size(), backlog_pos_ + stick::sync::kRowsPerBatch);
    for (; backlog_pos_ < end; ++backlog_pos_) {
      Item& it = backlog_[backlog_pos_];
      auto& w = writers[it.table];
      if (!w) {
        w = std::make_unique<stick::sync::BatchWriter>(*tables_[it.table], proto::TableBatch::DELTA,
                                                       now.wall_ms);
      }
      if (it.erased) {
        w->add_erased(it.key, it.epoch);
      } else {
        w->add_pending(it.key, now);
      }
      if (w->full()) ship(*w);
    }
    for (auto& w : writers) {
      if (w && w->rows()) ship(*w);
    }
  }
  if (backlog_pos_ >= backlog_.size()) {
    backlog_.clear();
    backlog_pos_ = 0;
  }
  backlog_size_.store(backlog_.size() - backlog_pos_, std::memory_order_relaxed);
}

void PeersLink::introduce(bool refill) {
  if (!writable()) return;  // not connected yet: again at the next turn
  const int64_t now = mono_ms();
  last_hello_ms_ = now;
  proto::PeersMessage hello;
  hello.mutable_hello()->set_pid(pid_);
  hello.mutable_hello()->set_generation(generation_);
  if (!send(hello)) return;
  if (!refill) {
    // A silent agent: it answers a hello with a heartbeat, which says whether
    // it still has this process's tables.
    std::lock_guard<std::mutex> g(stats_mu_);
    introduced_ = true;
    return;
  }
  {
    const stick::Now t = stick::clock_now();
    for (auto& table : tables_) {
      stick::sync::write_all(*table, proto::TableBatch::REFILL, t, [&](proto::TableBatch b) {
        proto::PeersMessage m;
        *m.mutable_batch() = std::move(b);
        send(m);
      });
    }
    // The first hello of the process refills nothing worth counting; a later
    // one fills a new (or a silent) agent.
    if (heard_.load()) refills_.fetch_add(1, std::memory_order_relaxed);
  }
  proto::PeersMessage synced;
  {
    std::lock_guard<std::mutex> g(snap_mu_);
    synced.mutable_synced()->set_want_snapshot(!snapshot_);
  }
  send(synced);
  want_full_ = false;
  last_full_ms_ = now;
  std::lock_guard<std::mutex> g(stats_mu_);
  introduced_ = true;
}

void PeersLink::heartbeat() {
  const int64_t now = mono_ms();
  if (want_full_ && now - last_hello_ms_ >= kHelloRetryMs) {
    introduce(true);
    return;
  }
  if (now - last_heard_ms_ > kSilentAgentMs && now - last_hello_ms_ > kSilentAgentMs) {
    introduce(false);
    return;
  }
  if (now < next_heartbeat_ms_) return;
  next_heartbeat_ms_ = now + kHeartbeatMs;
  if (!writable()) return;
  proto::PeersMessage m;
  Stats s = stats();
  m.mutable_heartbeat()->set_coalesced(s.coalesced);
  m.mutable_heartbeat()->set_pending(s.pending);
  send(m);
}

PeersLink::Stats PeersLink::stats() {
  Stats s;
  {
    std::lock_guard<std::mutex> g(queues_mu_);
    for (auto& q : queues_) {
      s.coalesced += q->coalesced.load(std::memory_order_relaxed);
      std::lock_guard<std::mutex> gq(q->mu);
      s.pending += q->items.size();
    }
  }
  s.pending += backlog_size_.load(std::memory_order_relaxed);
  s.sent = sent_.load(std::memory_order_relaxed);
  s.received = received_.load(std::memory_order_relaxed);
  s.refills = refills_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> g(snap_mu_);
    s.snapshot = snapshot_;
  }
  std::lock_guard<std::mutex> g(stats_mu_);
  s.incarnation = incarnation_;
  s.agent_pid = agent_pid_;
  s.linked = introduced_ && mono_ms() - last_heard_ms_ <= kSilentAgentMs;
  s.links = agent_links_;
  s.nodes = agent_nodes_;
  s.local_node = local_node_;
  return s;
}

}  // namespace weir
