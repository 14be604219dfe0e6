// The peers agent's replica and its links to the worker processes (agent.h).

#include "peers/agent.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/ipc/ipc.h"
#include "common/stick/sync.h"
#include "peers/state_store.h"

namespace weir::peers {
namespace {

constexpr int64_t kHeartbeatMs = 250;
constexpr int64_t kCheckMs = 1000;
// Batches queued to one worker process before the agent stops queueing and
// resyncs it with a snapshot once it reads again.
constexpr int kSendHighWater = 20000;
// A link that never said hello (batches from before this agent started) and
// has been silent this long is forgotten.
constexpr int64_t kAnonymousLinkMs = 10000;
// After a full resync, the agent applies what it kept once every worker has
// what it was sent, or after this long (a worker of an older build does not
// answer marks).
constexpr int64_t kMarkWaitMs = 2000;
// The backlog's share of a turn of the loop.
constexpr int64_t kBacklogSliceMs = 5;

bool same_def(const stick::TableDef& a, const stick::TableDef& b) {
  if (a.type != b.type || a.key_size != b.key_size || a.size != b.size ||
      a.expire_ms != b.expire_ms || a.sync != b.sync || a.store.size() != b.store.size()) {
    return false;
  }
  for (size_t i = 0; i < a.store.size(); ++i) {
    if (a.store[i].datum != b.store[i].datum || a.store[i].count != b.store[i].count ||
        a.store[i].period_ms != b.store[i].period_ms) {
      return false;
    }
  }
  return true;
}

uint64_t random_incarnation() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v || v == 0) {
    v = static_cast<uint64_t>(getpid()) << 32 ^ static_cast<uint64_t>(stick::clock_now().wall_ms);
  }
  return v | 1;  // never 0, which a worker reads as "no agent yet"
}

bool same_peers(const PeersConfig& a, const PeersConfig& b) {
  if (a.cluster != b.cluster || a.local != b.local || a.bind.to_string() != b.bind.to_string() ||
      a.secret_key != b.secret_key || a.nodes.size() != b.nodes.size()) {
    return false;
  }
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    if (a.nodes[i].name != b.nodes[i].name || a.nodes[i].address != b.nodes[i].address ||
        a.nodes[i].public_keys != b.nodes[i].public_keys) {
      return false;
    }
  }
  return true;
}

}  // namespace

Agent::Agent(AgentOptions opts)
    : opts_(std::move(opts)),
      router_(ctx_, zmq::socket_type::router),
      incarnation_(random_incarnation()) {}

Agent::~Agent() {
  router_.set(zmq::sockopt::linger, 0);
}

bool Agent::bind(std::string* error) {
  try {
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::router_handover, 1);
    router_.set(zmq::sockopt::sndhwm, kSendHighWater);
    router_.set(zmq::sockopt::rcvhwm, 0);
    // Only processes of this account may connect (besides the directory's 0700).
    const int uid = static_cast<int>(geteuid());
    zmq_setsockopt(router_.handle(), ZMQ_IPC_FILTER_UID, &uid, sizeof uid);
    router_.bind(endpoint_of(opts_.run_dir));
  } catch (const zmq::error_t& e) {
    *error = "cannot listen on " + endpoint_of(opts_.run_dir) + ": " + e.what();
    return false;
  }
  const int64_t now = stick::clock_now().mono_ms;
  next_heartbeat_ms_ = now;
  next_check_ms_ = now + kCheckMs;
  next_save_ms_ = opts_.save_interval_ms > 0 ? now + opts_.save_interval_ms : 0;
  return true;
}

stick::Table* Agent::table(const std::string& name) const {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

bool Agent::configure(const Config& cfg, std::string* error) {
  backlog_.settle();
  std::map<std::string, std::shared_ptr<stick::Table>> next;
  const stick::Now now = stick::clock_now();
  bool tables_changed = cfg.stick_tables.size() != tables_.size();
  for (const auto& t : cfg.stick_tables) {
    auto it = tables_.find(t->name());
    if (it != tables_.end() && same_def(it->second->def(), t->def())) {
      next[t->name()] = it->second;
      continue;
    }
    tables_changed = true;
    auto fresh = std::make_shared<stick::Table>(t->def());
    if (it != tables_.end() && it->second->def().type == t->def().type) {
      // A changed definition: the entries move over with the data both store.
      size_t moved = 0;
      stick::sync::write_all(
          *it->second, proto::TableBatch::SNAPSHOT, now,
          [&](const proto::TableBatch& b) { moved += stick::sync::apply(*fresh, b, now).rows; });
      log::notice("peers: table %s changed its definition; %zu entries kept", t->name().c_str(),
                  moved);
    } else if (it != tables_.end()) {
      log::notice("peers: table %s changed its key type; its entries are dropped",
                  t->name().c_str());
    }
    next[t->name()] = std::move(fresh);
  }
  for (const auto& [name, t] : tables_) {
    if (!next.count(name)) log::notice("peers: table %s is no longer configured", name.c_str());
  }
  tables_ = std::move(next);
  stick::set_local_node(cfg.peers.local_id);
  if (!cfg.peers.enabled()) {
    if (cluster_) {
      log::notice("peers: no peers section any more: this node leaves its cluster");
      cluster_->forget_nodes();
    }
    cluster_.reset();
    return true;
  }
  if (cluster_ && same_peers(cluster_->config(), cfg.peers)) {
    // The links stay; the other nodes hear of changed tables in a new hello.
    cluster_->set_dead_after(cfg.peers.dead_after_ms);
    if (tables_changed) cluster_->rehello();
    return true;
  }
  if (!cluster_) {
    cluster_ = std::make_unique<Cluster>(
        ctx_, tables_, backlog_, incarnation_,
        [this](const proto::TableBatch& b, std::string_view raw) { deliver(b, raw); });
    cluster_->set_node_started(opts_.node_started);
    cluster_->on_presize([this](const proto::Presize& p) {
      proto::PeersMessage m;
      *m.mutable_presize() = p;
      for (auto& [id, l] : links_) {
        if (!l.resync) send(l, m, 0);
      }
    });
    cluster_->set_own_conn_cur([this] {
      stick::sync::ConnCurLedger own;
      for (const auto& [id, link] : links_) own.add(link.conn_cur);
      return own;
    });
    cluster_->share_servers(&servers_,
                            [this](const proto::ServerRecords& rs) { on_servers(nullptr, rs); });
  }
  return cluster_->configure(cfg.peers, error);
}

void Agent::set_state(std::string state_path, int64_t save_interval_ms) {
  if (state_path != opts_.state_path) {
    log::notice("peers: the tables are kept in %s from now on",
                state_path.empty() ? "no state file" : state_path.c_str());
  }
  opts_.state_path = std::move(state_path);
  if (save_interval_ms != opts_.save_interval_ms) {
    opts_.save_interval_ms = save_interval_ms;
    next_save_ms_ = save_interval_ms > 0 ? stick::clock_now().mono_ms + save_interval_ms : 0;
  }
}

std::string Agent::state_or_handover_path(bool handover) const {
  if (!opts_.state_path.empty()) return opts_.state_path;
  return handover ? opts_.run_dir + "/tables.handover" : std::string();
}

void Agent::import_state_file() {
  if (opts_.import_state_file.empty() || servers_.size() > 0) return;
  const std::string& path = opts_.import_state_file;
  std::string error;
  const std::optional<size_t> n = peers::import_state_file(path, servers_, &error);
  if (!error.empty()) {
    log::warning("peers: cannot read global.state_file %s to import its server states: %s",
                 path.c_str(), error.c_str());
  }
  if (!n) return;
  log::notice(
      "peers: imported %zu server states from global.state_file %s; they are kept in state_dir "
      "from now on (the state file is no longer written)",
      *n, path.c_str());
}

void Agent::load_state() {
  std::string path = opts_.state_path;
  const std::string handover = opts_.run_dir + "/tables.handover";
  bool from_handover = false;
  if (::access(handover.c_str(), F_OK) == 0) {
    // A previous agent of this master stopped cleanly (a binary upgrade): its
    // hand-over is newer than any state file.
    path = handover;
    from_handover = true;
  }
  if (path.empty()) return import_state_file();
  LoadReport r = load_tables(path, tables_, stick::clock_now(), &servers_);
  import_state_file();
  if (from_handover) ::unlink(handover.c_str());
  if (r.missing) return;
  if (!r.error.empty()) {
    log::warning("peers: state file %s is unreadable (%s): the tables start empty", path.c_str(),
                 r.error.c_str());
    return;
  }
  log::notice("peers: loaded %llu entries from %s (%llu expired meanwhile) and %llu server states",
              static_cast<unsigned long long>(r.entries), path.c_str(),
              static_cast<unsigned long long>(r.expired),
              static_cast<unsigned long long>(r.servers));
}

bool Agent::save_state(bool handover, bool periodic) {
  const std::string path = state_or_handover_path(handover);
  if (path.empty()) return true;
  backlog_.settle();
  std::string error;
  uint64_t n = 0;
  if (!save_tables(path, tables_, stick::clock_now(), &n, &error, &servers_)) {
    log::error("peers: cannot save the tables to %s: %s", path.c_str(), error.c_str());
    return false;
  }
  // The periodic saves are silent (one line a minute would say nothing new);
  // the one at a stop is logged.
  if (!periodic) {
    log::info("peers: saved %llu entries to %s", static_cast<unsigned long long>(n), path.c_str());
  }
  return true;
}

bool Agent::poll_once(int extra_fd, int64_t timeout_ms) {
  std::vector<zmq::pollitem_t> items = {
      {router_.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, extra_fd, static_cast<short>(extra_fd >= 0 ? ZMQ_POLLIN : 0), 0}};
  if (cluster_) cluster_->poll_items(items);
  const int64_t now0 = stick::clock_now().mono_ms;
  int64_t until_timer = std::max<int64_t>(0, next_heartbeat_ms_ - now0);
  if (!backlog_.held() && !backlog_.empty()) {
    // Kept batches to apply: at once, or when the workers' marks are due.
    until_timer = backlog_may_work(now0) ? 0 : std::min(until_timer, marks_until_ - now0);
  }
  if (cluster_) until_timer = std::min(until_timer, cluster_->next_timer_in(now0));
  try {
    zmq::poll(items.data(), items.size(),
              std::chrono::milliseconds(std::min(timeout_ms, until_timer)));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) log::error("peers: poll: %s", e.what());
  }
  // Up to a bounded number of messages per turn, so the timers keep their pace.
  for (int i = 0; i < 4096; ++i) {
    zmq::message_t id, payload;
    std::optional<size_t> got;
    try {
      got = router_.recv(id, zmq::recv_flags::dontwait);
    } catch (const zmq::error_t&) {
      break;
    }
    if (!got) break;
    bool more = id.more();
    if (more) {
      if (!router_.recv(payload, zmq::recv_flags::none)) break;
      more = payload.more();
    }
    while (more) {  // a frame too many: not from a worker of this build
      zmq::message_t extra;
      if (!router_.recv(extra, zmq::recv_flags::none)) break;
      more = extra.more();
    }
    on_message(id.to_string(), payload);
  }
  if (cluster_) {
    cluster_->flush();  // this turn's updates leave now, numbered as one
    cluster_->handle(items.data(), items.size());
    cluster_->timers(stick::clock_now().mono_ms);
  }
  timers();
  const int64_t now = stick::clock_now().mono_ms;
  if (backlog_.releases() != backlog_releases_) {  // a full resync is in
    backlog_releases_ = backlog_.releases();
    ask_marks();
  }
  if (!backlog_.held() && !backlog_.empty() && backlog_may_work(now)) {
    backlog_.work(kBacklogSliceMs);
  }
  if (backlog_rows_ > 0 && backlog_.empty()) {
    log::info(
        "peers: this agent's tables hold the full resync too (%zu rows, %lld ms after it came)",
        backlog_rows_, static_cast<long long>(now - backlog_since_));
    backlog_rows_ = 0;
  }
  return extra_fd >= 0 && (items[1].revents & ZMQ_POLLIN);
}

void Agent::ask_marks() {
  proto::PeersMessage m;
  m.mutable_mark()->set_id(++mark_);
  marks_due_.clear();
  for (auto& [id, l] : links_) {
    if (l.connected && l.synced && send(l, m, 0)) marks_due_.insert(id);
  }
  backlog_since_ = stick::clock_now().mono_ms;
  marks_until_ = backlog_since_ + kMarkWaitMs;
  backlog_rows_ = backlog_.held_rows();
}

bool Agent::backlog_may_work(int64_t now) const {
  return marks_due_.empty() || now >= marks_until_;
}

void Agent::on_message(const std::string& id, const zmq::message_t& payload) {
  proto::PeersMessage m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    log::warning("peers: dropping an undecodable message (%zu bytes)", payload.size());
    return;
  }
  const int64_t now = stick::clock_now().mono_ms;
  auto [it, fresh] = links_.try_emplace(id);
  Link& link = it->second;
  if (fresh) {
    link.id = id;
    link.first_ms = now;
  }
  link.last_ms = now;
  link.connected = true;
  if (fresh && m.body_case() != proto::PeersMessage::kHello) {
    // A worker process that spoke to this agent's predecessor (a binary
    // upgrade, a respawn): a heartbeat tells it at once that this agent is
    // new, and it refills it, rather than at the next heartbeat.
    send_heartbeats();
  }
  switch (m.body_case()) {
    case proto::PeersMessage::kHello:
      link.pid = m.hello().pid();
      link.generation = m.hello().generation();
      log::info("peers: worker pid=%d generation=%d linked", link.pid, link.generation);
      send_heartbeats();  // it learns this agent's incarnation at once
      break;
    case proto::PeersMessage::kBatch:
      on_batch(link, m.batch(), payload);
      break;
    case proto::PeersMessage::kSynced:
      link.synced = true;
      if (m.synced().want_snapshot()) send_snapshot(link);
      send_heartbeats();  // it sees at once that this agent has its tables
      break;
    case proto::PeersMessage::kHeartbeat:
      link.coalesced = m.heartbeat().coalesced();
      link.pending = m.heartbeat().pending();
      break;
    case proto::PeersMessage::kBye:
      settle(id, "said goodbye");
      break;
    case proto::PeersMessage::kServers:
      on_servers(&link, m.servers());
      break;
    case proto::PeersMessage::kMark:
      if (m.mark().id() == mark_) marks_due_.erase(id);
      break;
    default:
      break;  // from a newer worker: nothing this agent needs
  }
}

void Agent::on_batch(Link& from, const proto::TableBatch& b, const zmq::message_t& payload) {
  from.received += static_cast<uint64_t>(b.rows_size());
  if (auto t = tables_.find(b.table()); t != tables_.end()) backlog_.apply(t->second, b);
  // A refill goes on too: a generation that loaded its snapshot before it
  // came takes the larger values as well.
  if (b.kind() == proto::TableBatch::DELTA) {
    from.conn_cur.count(b);
    // This node's own updates go to the other nodes; a refill (what a worker
    // held for a new agent) holds theirs too, and they send it themselves.
    if (cluster_) cluster_->publish(b);
  }
  forward(from.id, payload.data(), payload.size(), static_cast<size_t>(b.rows_size()));
}

void Agent::deliver(const proto::TableBatch& b, std::string_view raw) {
  // A PeersMessage whose only field is `batch`, written directly: its key and
  // length, then the batch as it came (or serialised: copying the batch into
  // a PeersMessage first would copy every row of a resync once more).
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  const size_t size = raw.empty() ? b.ByteSizeLong() : raw.size();
  uint8_t head[16];
  uint8_t* end = CodedOutputStream::WriteTagToArray(
      WireFormatLite::MakeTag(proto::PeersMessage::kBatchFieldNumber,
                              WireFormatLite::WIRETYPE_LENGTH_DELIMITED),
      head);
  end = CodedOutputStream::WriteVarint64ToArray(size, end);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(end - head) + size);
  bytes.append(reinterpret_cast<const char*>(head), static_cast<size_t>(end - head));
  if (raw.empty()) {
    b.AppendToString(&bytes);
  } else {
    bytes.append(raw);
  }
  forward(std::string(), bytes.data(), bytes.size(), static_cast<size_t>(b.rows_size()));
}

void Agent::forward(const std::string& from_id, const void* data, size_t size, size_t rows) {
  for (auto& [id, other] : links_) {
    // A link waiting for its catch-up gets everything with it.
    if (id == from_id || other.resync) continue;
    send_raw(other, data, size, rows);
  }
}

void Agent::settle(const std::string& id, const char* why) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  Link& gone = it->second;
  const stick::Now now = stick::clock_now();
  const size_t keys = gone.conn_cur.keys();
  for (const proto::TableBatch& b : gone.conn_cur.batches(-1, now.wall_ms)) {
    if (auto t = tables_.find(b.table()); t != tables_.end()) backlog_.apply(t->second, b);
    if (cluster_) cluster_->publish(b);
    proto::PeersMessage m;
    *m.mutable_batch() = b;
    const std::string bytes = m.SerializeAsString();
    forward(id, bytes.data(), bytes.size(), static_cast<size_t>(b.rows_size()));
  }
  if (keys) {
    log::notice(
        "peers: worker pid=%d generation=%d %s with connections open on %zu keys; "
        "they no longer count in conn_cur",
        gone.pid, gone.generation, why, keys);
  } else {
    log::info("peers: worker pid=%d generation=%d %s", gone.pid, gone.generation, why);
  }
  marks_due_.erase(id);
  links_.erase(it);
}

bool Agent::send(Link& to, const proto::PeersMessage& m, size_t rows) {
  const std::string bytes = m.SerializeAsString();
  return send_raw(to, bytes.data(), bytes.size(), rows);
}

bool Agent::send_raw(Link& to, const void* data, size_t size, size_t rows) {
  try {
    if (!router_.send(zmq::buffer(to.id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      // Its queue is full (a stopped or very slow process): what it misses
      // comes back with a snapshot once it reads again.
      to.dropped += rows;
      to.resync = true;
      return false;
    }
    router_.send(zmq::const_buffer(data, size), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    to.connected = false;  // EHOSTUNREACH: not connected (any more)
    return false;
  }
  to.sent += rows;
  return true;
}

void Agent::send_snapshot(Link& to, bool catch_up) {
  backlog_.settle();
  const stick::Now now = stick::clock_now();
  {
    // Its indexes take the tables' size at once.
    proto::PeersMessage m;
    for (auto& [name, t] : tables_) {
      proto::TableSize* size = m.mutable_presize()->add_tables();
      size->set_table(name);
      size->set_entries(t->used());
    }
    send(to, m, 0);
  }
  uint64_t entries = 0;
  bool ok = true;
  for (auto& [name, t] : tables_) {
    stick::sync::write_all(*t, catch_up ? proto::TableBatch::REFILL : proto::TableBatch::SNAPSHOT,
                           now, [&](proto::TableBatch b) {
                             if (!ok) return;
                             proto::PeersMessage m;
                             entries += static_cast<uint64_t>(b.rows_size());
                             const size_t rows = static_cast<size_t>(b.rows_size());
                             *m.mutable_batch() = std::move(b);
                             ok = send(to, m, rows);
                           });
  }
  if (!ok) return;  // resync stays set: again at the next check
  proto::PeersMessage done;
  done.mutable_snapshot_done()->set_entries(entries);
  if (send(to, done, 0)) {
    to.resync = false;
    if (servers_.size() > 0) {
      // The server states set at runtime, after the tables.
      proto::PeersMessage m;
      servers_.all(m.mutable_servers());
      m.mutable_servers()->set_snapshot(true);
      send(to, m, 0);
    }
    log::info("peers: snapshot of %llu entries sent to worker pid=%d generation=%d",
              static_cast<unsigned long long>(entries), to.pid, to.generation);
  }
}

void Agent::on_servers(Link* from, const proto::ServerRecords& rs) {
  proto::ServerRecords changed;
  for (const proto::ServerRecord& r : rs.records()) {
    // From another node, the cluster merged them already.
    if (!from || servers_.merge(r)) *changed.add_records() = r;
  }
  if (changed.records_size() == 0) return;
  // Saved within a second: operators expect what they set to survive a crash.
  const int64_t soon = stick::clock_now().mono_ms + 1000;
  if (!opts_.state_path.empty() && (next_save_ms_ == 0 || next_save_ms_ > soon)) {
    next_save_ms_ = soon;
  }
  proto::PeersMessage m;
  *m.mutable_servers() = changed;
  for (auto& [id, other] : links_) {
    if (&other != from) send(other, m, 0);
  }
  if (from && cluster_) cluster_->publish_servers(changed);
}

std::vector<int> Agent::not_refilled_by(const std::vector<int>& pids) const {
  std::vector<int> missing;
  for (int pid : pids) {
    bool refilled = false;
    for (const auto& [id, l] : links_) refilled = refilled || (l.pid == pid && l.synced);
    // A process that is gone (it drained and exited meanwhile) has nothing
    // more to bring.
    const bool gone = ::kill(pid, 0) != 0 && errno == ESRCH;
    if (!refilled && !gone) missing.push_back(pid);
  }
  return missing;
}

void Agent::send_heartbeats() {
  const int64_t now = stick::clock_now().mono_ms;
  proto::PeersMessage m;
  proto::Heartbeat* hb = m.mutable_heartbeat();
  hb->set_incarnation(incarnation_);
  hb->set_agent_pid(getpid());
  if (cluster_) {
    hb->set_local_node(cluster_->config().local);
    cluster_->stats(hb->mutable_nodes());
  }
  for (const auto& [id, l] : links_) {
    proto::LinkStats* s = hb->add_links();
    s->set_pid(l.pid);
    s->set_generation(l.generation);
    s->set_connected(l.connected && now - l.last_ms < 4 * kHeartbeatMs + 1000);
    s->set_updates_received(l.received);
    s->set_updates_sent(l.sent);
    s->set_coalesced(l.coalesced);
    s->set_pending(l.pending);
    s->set_dropped(l.dropped);
    s->set_age_ms(now - l.first_ms);
    s->set_synced(l.synced);
  }
  const std::string bytes = m.SerializeAsString();
  for (auto& [id, l] : links_) send_raw(l, bytes.data(), bytes.size(), 0);
}

void Agent::check_links() {
  const int64_t now = stick::clock_now().mono_ms;
  std::vector<std::string> gone;
  for (auto& [id, l] : links_) {
    if (l.pid > 0) {
      if (::kill(l.pid, 0) != 0 && errno == ESRCH) gone.push_back(id);
    } else if (now - l.last_ms > kAnonymousLinkMs) {
      gone.push_back(id);
    }
  }
  for (const std::string& id : gone) settle(id, "exited without a goodbye");
  for (auto& [id, l] : links_) {
    if (l.resync && l.connected) send_snapshot(l, true);
  }
}

void Agent::timers() {
  const stick::Now now = stick::clock_now();
  if (now.mono_ms >= next_heartbeat_ms_) {
    next_heartbeat_ms_ = now.mono_ms + kHeartbeatMs;
    send_heartbeats();
  }
  if (now.mono_ms >= next_check_ms_) {
    next_check_ms_ = now.mono_ms + kCheckMs;
    check_links();
    // Not before what is kept is in (the next check purges).
    if (backlog_.empty()) {
      for (auto& [name, t] : tables_) t->purge_expired(now);
    }
  }
  if (next_save_ms_ && now.mono_ms >= next_save_ms_) {
    next_save_ms_ = opts_.save_interval_ms > 0 ? now.mono_ms + opts_.save_interval_ms : 0;
    if (!opts_.state_path.empty()) save_state(false, true);
  }
}

}  // namespace weir::peers
