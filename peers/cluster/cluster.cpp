// The peers agent's links to the other nodes of its cluster (cluster.h).

#include "peers/cluster/cluster.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <zmq.h>

#include <algorithm>

#include "common/base/log.h"
#include "common/base/version.h"
#include "common/stick/sync.h"
#include "peers/cluster/zap.h"

namespace weir::peers {
namespace {

// The version of the node protocol this build speaks (NodeMessage.protocol).
// A node refuses a hello below kOldestNodeProtocol.
constexpr uint32_t kNodeProtocolVersion = 1;
constexpr uint32_t kOldestNodeProtocol = 1;

constexpr int64_t kHeartbeatMs = 200;
constexpr int64_t kHelloRetryMs = 20;
// A hello no connection took (ZMQ_IMMEDIATE: the dealer is still connecting)
// is tried again this soon while the dealers are new, so that the first hello
// leaves about when the connection is made rather than up to kHelloRetryMs
// later; a restarted node's resync starts that much sooner.
constexpr int64_t kHelloSoonMs = 2;
constexpr int64_t kNewDealersMs = 500;
// Connections to a node are made again on its hello at most this often (its
// hellos come every kHelloRetryMs while it is not welcomed).
constexpr int64_t kRemakeAfterMs = 100;
// A node told to wait for another's full resync says hello again this often,
// and waits at most kWaitForSourceMs for that resync to begin. Often: when
// every node starts at once, the resync waited for is empty and over within
// a few ms, and the link waits for the next hello (at 100 ms, a full mesh
// took 110-125 ms in about one start out of four). A hello and its answer
// cost the node that is busy with its resync a few microseconds.
constexpr int64_t kWaitHelloMs = 10;
constexpr int64_t kWaitForSourceMs = 5000;
// A link that has heard nothing this long (its peer acknowledges every
// heartbeat) is down, and starts again with a hello.
constexpr int64_t kSilentMs = 2000;
// Messages a DEALER holds for a peer that reads slowly.
constexpr int kSendHighWater = 1000;
// The log of this node's updates, for peers that missed some: at most this
// many bytes (older updates go; a peer that needs them gets a full resync).
constexpr size_t kLogBytes = size_t{64} << 20;
// A refusal from one address, for one reason, is logged once in this long.
constexpr int64_t kRefusalLogMs = 60000;
// Rows per NodeResync part.
constexpr size_t kResyncPartRows = 4096;
// A full resync reads this many shards of a table per step, and steps for at
// most this long per turn of the loop (the rest of the work goes on between).
constexpr unsigned kResyncShardsPerStep = 2;
constexpr int64_t kResyncSliceMs = 5;
// At most about this long reading other nodes' messages in one turn.
constexpr int64_t kTurnMs = 5;
// A full resync coming in holds the agent's own writes (backlog.h) until its
// last part, or until no part has come for this long.
constexpr int64_t kResyncStalledMs = 2000;
// Deletes are kept this long for the resyncs (or the table's expiry, when it
// is longer), and at most this many in all (the oldest go first).
constexpr int64_t kTombMs = 10 * 60 * 1000;
constexpr size_t kMaxTombs = 1 << 20;

int64_t mono_now() {
  return stick::clock_now().mono_ms;
}

std::string endpoint(const SockAddr& a) {
  return "tcp://" + a.to_string();  // "1.2.3.4:80" or "[::1]:80"
}

// The host part of an address as ZeroMQ's Peer-Address gives it.
std::string host_of(const SockAddr& a) {
  std::string text = a.to_string();
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) text.resize(colon);
  if (text.size() >= 2 && text.front() == '[') text = text.substr(1, text.size() - 2);
  return text;
}

const char* resync_word(bool sending, bool receiving) {
  return sending ? "sending" : receiving ? "receiving" : "none";
}

std::string peer_address(const zmq::message_t& m) {
  const char* a = zmq_msg_gets(const_cast<zmq_msg_t*>(m.handle()), "Peer-Address");
  return a ? unmapped(a) : "?";
}

// Where each TableBatch of a NodeMessage's updates or resync (`field`) lies in
// its bytes, in order: handed on to the workers as they came, rather than
// serialised again. Empty when the scan does not find exactly `expected`.
std::vector<std::string_view> batch_bytes(std::string_view msg, int field, int expected) {
  using google::protobuf::internal::WireFormatLite;
  std::vector<std::string_view> out;
  out.reserve(static_cast<size_t>(expected));
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(msg.data()),
                                            static_cast<int>(msg.size()));
  auto delimited = [](uint32_t tag, int number) {
    return WireFormatLite::GetTagFieldNumber(tag) == number &&
           WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  };
  while (uint32_t tag = in.ReadTag()) {
    if (!delimited(tag, field)) {
      if (!WireFormatLite::SkipField(&in, tag)) return {};
      continue;
    }
    uint32_t len = 0;
    if (!in.ReadVarint32(&len)) return {};
    const auto limit = in.PushLimit(static_cast<int>(len));
    // NodeUpdates.batches and NodeResync.batches are both field 4.
    while (uint32_t inner = in.ReadTag()) {
      if (delimited(inner, proto::NodeUpdates::kBatchesFieldNumber)) {
        uint32_t n = 0;
        if (!in.ReadVarint32(&n)) return {};
        const int at = in.CurrentPosition();
        if (!in.Skip(static_cast<int>(n))) return {};
        out.emplace_back(msg.data() + at, n);
      } else if (!WireFormatLite::SkipField(&in, inner)) {
        return {};
      }
    }
    if (!in.ConsumedEntireMessage()) return {};
    in.PopLimit(limit);
  }
  if (out.size() != static_cast<size_t>(expected)) return {};
  return out;
}

std::string_view raw_at(const std::vector<std::string_view>& raw, int i) {
  return static_cast<size_t>(i) < raw.size() ? raw[static_cast<size_t>(i)] : std::string_view();
}

std::string user_id(const zmq::message_t& m) {
  const char* u = zmq_msg_gets(const_cast<zmq_msg_t*>(m.handle()), "User-Id");
  return u ? u : "";
}

}  // namespace

Cluster::Cluster(zmq::context_t& ctx, const Tables& tables, Backlog& backlog, uint64_t incarnation,
                 std::function<void(const proto::TableBatch&, std::string_view)> deliver)
    : ctx_(ctx),
      tables_(tables),
      backlog_(backlog),
      incarnation_(incarnation),
      deliver_(std::move(deliver)) {}

// Every socket is made with linger 0: closing one drops what it still holds.
Cluster::~Cluster() {
  backlog_.hold(false);  // no resync comes in any more
  close_dealers();
  router_.reset();
}

void Cluster::close_dealers() {
  for (auto& [name, o] : out_) o.dealers.clear();
}

bool Cluster::configure(const PeersConfig& cfg, std::string* error) {
  // The listening socket stays when its address and key do (closing it and
  // binding again at once can find the port still taken).
  const bool keep_router =
      router_ && cfg.bind.to_string() == cfg_.bind.to_string() && cfg.secret_key == cfg_.secret_key;
  close_dealers();
  if (!keep_router) router_.reset();
  cfg_ = cfg;
  if (!zap_) {
    zap_ = std::make_unique<ZapHandler>(ctx_);
    if (!zap_->bind(error)) return false;
  }
  zap_->allow(cfg_);
  if (!keep_router) {
    try {
      router_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
      router_->set(zmq::sockopt::linger, 0);
      router_->set(zmq::sockopt::router_handover, 1);
      router_->set(zmq::sockopt::router_mandatory, 1);
      router_->set(zmq::sockopt::sndhwm, kSendHighWater);
      router_->set(zmq::sockopt::rcvhwm, 0);
      router_->set(zmq::sockopt::curve_server, 1);
      router_->set(zmq::sockopt::curve_secretkey, cfg_.secret_key);
      router_->set(zmq::sockopt::zap_domain, "weir-peers");
      router_->set(zmq::sockopt::heartbeat_ivl, 500);
      router_->set(zmq::sockopt::heartbeat_timeout, 3000);
      router_->set(zmq::sockopt::ipv6, 1);
      router_->bind(endpoint(cfg_.bind));
    } catch (const zmq::error_t& e) {
      *error = "peers: cannot listen on " + cfg_.bind.to_string() + ": " + e.what();
      router_.reset();
      return false;
    }
  }
  std::map<std::string, Out> next;
  const int64_t now = mono_now();
  for (const PeerNode& n : cfg_.nodes) {
    if (n.name == cfg_.local) continue;
    Out o;
    auto old = out_.find(n.name);
    if (old != out_.end()) {
      // The cursor stays: after the new connection's welcome, the peer says
      // where it is.
      o.next_seq = old->second.next_seq;
      o.acked = old->second.acked;
      o.holds_ours = old->second.holds_ours;
      o.sent = old->second.sent;
      o.resyncs = old->second.resyncs;
      o.bytes = old->second.bytes;
      o.rows = old->second.rows;
    }
    o.name = n.name;
    o.address = n.address;
    o.state_since = now;
    open_dealers(o, n, now);
    next.emplace(n.name, std::move(o));
  }
  out_ = std::move(next);
  for (auto it = in_.begin(); it != in_.end();) {
    if (cfg_.node(it->first)) {
      ++it;
      continue;
    }
    take_back_conn_cur(it->second, "is no longer in peers.nodes", false);
    it = in_.erase(it);
  }
  // The connections of a socket that stays are still the same nodes'.
  for (auto it = node_of_id_.begin(); it != node_of_id_.end();) {
    it = keep_router && in_.count(it->second) ? std::next(it) : node_of_id_.erase(it);
  }
  if (!keep_router) {
    for (auto& [name, in] : in_) in.linked = false;
  }
  log::notice("peers: node %s of cluster %s listens on %s for %zu other node(s)",
              cfg_.local.c_str(), cfg_.cluster.c_str(), cfg_.bind.to_string().c_str(), out_.size());
  return true;
}

std::unique_ptr<zmq::socket_t> Cluster::make_dealer(const std::string& server_key,
                                                    const PeerNode& node) {
  auto d = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  d->set(zmq::sockopt::linger, 0);
  d->set(zmq::sockopt::routing_id, cfg_.local);
  d->set(zmq::sockopt::immediate, 1);  // nothing queues toward a peer not connected
  d->set(zmq::sockopt::sndhwm, kSendHighWater);
  d->set(zmq::sockopt::rcvhwm, 0);
  // A node that comes up is reached within about 50 ms: retries back off
  // from 20 ms to 50 ms, not further (twenty connection attempts a second to
  // a node that is down cost nothing worth saving).
  d->set(zmq::sockopt::reconnect_ivl, 20);
  d->set(zmq::sockopt::reconnect_ivl_max, 50);
  d->set(zmq::sockopt::heartbeat_ivl, 500);
  d->set(zmq::sockopt::heartbeat_timeout, 3000);
  d->set(zmq::sockopt::curve_serverkey, server_key);
  d->set(zmq::sockopt::curve_publickey, cfg_.public_key);
  d->set(zmq::sockopt::curve_secretkey, cfg_.secret_key);
  d->set(zmq::sockopt::ipv6, 1);
  // From this node's own address when it listens on one (not a wildcard), so
  // that the peer sees, and logs, the address its configuration lists.
  std::string source;
  const std::string own = host_of(cfg_.bind);
  if (own != "0.0.0.0" && own != "::" &&
      (own.find(':') != std::string::npos) == (host_of(node.addr).find(':') != std::string::npos)) {
    source = (own.find(':') != std::string::npos ? "[" + own + "]" : own) + ":0;";
  }
  try {
    d->connect("tcp://" + source + node.addr.to_string());
  } catch (const zmq::error_t& e) {
    log::error("peers: cannot connect to node %s at %s: %s", node.name.c_str(),
               node.address.c_str(), e.what());
  }
  return d;
}

void Cluster::open_dealers(Out& o, const PeerNode& n, int64_t now) {
  o.dealers.clear();
  o.active = -1;
  for (const std::string& key : n.public_keys) o.dealers.push_back(make_dealer(key, n));
  o.dealers_made = now;
}

void Cluster::remake_dealers(Out& o, int64_t now) {
  const PeerNode* n = cfg_.node(o.name);
  if (n && now - o.dealers_made >= kRemakeAfterMs) open_dealers(o, *n, now);
}

bool Cluster::sync_table(const std::string& name) const {
  auto it = tables_.find(name);
  return it != tables_.end() && it->second->def().sync;
}

// ---- sending ----------------------------------------------------------------------------

void Cluster::note_tombs(const proto::TableBatch& b) {
  if (!tombs_.count(b.table())) {
    // Most batches hold no delete, for a table without tombstones.
    bool erases = false;
    for (const proto::Row& row : b.rows())
      erases = erases || (row.flags() & stick::sync::kRowErased);
    if (!erases) return;
  }
  auto& tombs = tombs_[b.table()];
  const int64_t now = mono_now();
  for (const proto::Row& row : b.rows()) {
    if (row.flags() & stick::sync::kRowErased) {
      // When the delete was made: a resync's tombstone says, a command's
      // removal carries its epoch; else when it reached this node.
      const uint64_t hlc = row.hlc()         ? row.hlc()
                           : row.epoch_hlc() ? row.epoch_hlc()
                                             : stick::hlc_now(stick::clock_now().wall_ms);
      auto [it, fresh] = tombs.try_emplace(row.key(), Tomb{hlc, now});
      if (fresh) {
        ++tomb_count_;
      } else {
        it->second = Tomb{std::max(hlc, it->second.hlc), now};
      }
    } else if (!tombs.empty()) {
      tomb_count_ -= tombs.erase(row.key());
    }
  }
  if (tombs.empty()) tombs_.erase(b.table());
  if (tomb_count_ > kMaxTombs) expire_tombs(now);
}

void Cluster::expire_tombs(int64_t now) {
  for (auto t = tombs_.begin(); t != tombs_.end();) {
    auto table = tables_.find(t->first);
    const int64_t keep =
        table == tables_.end() ? 0 : std::max(kTombMs, table->second->def().expire_ms);
    // Over the cap, the oldest half of what remains goes too.
    const int64_t cap_cut = tomb_count_ > kMaxTombs ? keep / 2 : keep;
    for (auto k = t->second.begin(); k != t->second.end();) {
      if (now - k->second.made_ms >= cap_cut) {
        k = t->second.erase(k);
        --tomb_count_;
      } else {
        ++k;
      }
    }
    t = t->second.empty() ? tombs_.erase(t) : std::next(t);
  }
}

void Cluster::publish(const proto::TableBatch& b) {
  if (out_.empty() || !sync_table(b.table())) return;
  note_tombs(b);
  gathered_.push_back(b);
  gathered_rows_ += static_cast<size_t>(b.rows_size());
}

void Cluster::flush() {
  if (gathered_.empty()) return;
  proto::NodeMessage m;
  m.set_protocol(kNodeProtocolVersion);
  proto::NodeUpdates* u = m.mutable_updates();
  u->set_incarnation(incarnation_);
  u->set_seq(++last_seq_);
  u->set_wall_ms(stick::clock_now().wall_ms);
  for (proto::TableBatch& b : gathered_) *u->add_batches() = std::move(b);
  gathered_.clear();
  LogEntry e{last_seq_, mono_now(), m.SerializeAsString(), gathered_rows_};
  gathered_rows_ = 0;
  log_bytes_ += e.bytes.size();
  log_.push_back(std::move(e));
  trim_log();
  for (auto& [name, o] : out_) pump(o);
}

bool Cluster::send_to(Out& o, const std::string& bytes, int dealer) {
  const int i = dealer >= 0 ? dealer : o.active;
  if (i < 0 || i >= static_cast<int>(o.dealers.size())) return false;
  try {
    return o.dealers[static_cast<size_t>(i)]
        ->send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)
        .has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

bool Cluster::send_parts(Out& o) {
  while (!o.resync.empty()) {
    if (!send_to(o, o.resync.front().first)) return false;
    o.bytes += o.resync.front().first.size();
    o.rows += o.resync.front().second;
    o.resync.pop_front();
  }
  return true;
}

void Cluster::pump(Out& o) {
  if (!o.linked) return;
  // A full resync first: its parts are made a slice at a time (the tables are
  // read shard by shard between turns of the loop) and sent as they are made.
  const int64_t t0 = mono_now();
  bool stepped = false;
  while (o.resync_active) {
    if (!send_parts(o)) return;  // its queue is full
    if (!o.walk) {               // every part made and sent
      o.resync_active = false;
      o.next_seq = o.resync_upto + 1;
      o.resync_in_flight = true;
      break;
    }
    if (stepped && mono_now() - t0 >= kResyncSliceMs) return;  // the rest next turn
    resync_step(o);
    stepped = true;
  }
  while (o.next_seq <= last_seq_) {
    if (log_.empty() || o.next_seq < log_.front().seq) {
      start_resync(o, "it is further behind than this node keeps");
      return;
    }
    const LogEntry& e = log_[static_cast<size_t>(o.next_seq - log_.front().seq)];
    if (!send_to(o, e.bytes)) return;  // its queue is full: the rest waits in the log
    ++o.next_seq;
    ++o.sent;
    o.bytes += e.bytes.size();
    o.rows += e.rows;
  }
}

void Cluster::publish_servers(const proto::ServerRecords& rs) {
  if (rs.records_size() == 0) return;
  proto::NodeMessage m;
  m.set_protocol(kNodeProtocolVersion);
  *m.mutable_servers() = rs;
  const std::string bytes = m.SerializeAsString();
  // A node whose queue is full gets them with the whole store at its next link.
  for (auto& [name, o] : out_) {
    if (o.linked) send_to(o, bytes);
  }
}

void Cluster::send_all_servers(Out& o) {
  if (!servers_ || servers_->size() == 0) return;
  proto::NodeMessage m;
  m.set_protocol(kNodeProtocolVersion);
  servers_->all(m.mutable_servers());
  m.mutable_servers()->set_snapshot(true);
  send_to(o, m.SerializeAsString());
}

void Cluster::on_servers(const proto::ServerRecords& rs) {
  if (!servers_) return;
  proto::ServerRecords changed;
  for (const proto::ServerRecord& r : rs.records()) {
    stick::hlc_observe(r.admin_at().hlc());
    stick::hlc_observe(r.weight_at().hlc());
    stick::hlc_observe(r.address_at().hlc());
    stick::hlc_observe(r.added_at().hlc());
    stick::hlc_observe(r.deleted_at().hlc());
    if (servers_->merge(r)) *changed.add_records() = r;
  }
  if (changed.records_size() > 0 && deliver_servers_) deliver_servers_(changed);
}

void Cluster::trim_log() {
  // An update every node that holds this run's updates has acknowledged is
  // never sent again: a node that comes back resumes after what it
  // acknowledged, and one that holds nothing of this run (new, restarted,
  // never linked) gets the whole tables. The log keeps the rest, up to its
  // size (a node away that long gets the whole tables too).
  uint64_t keep_from = last_seq_ + 1;
  for (const auto& [name, o] : out_) {
    if (o.resync_active || o.resync_in_flight) {
      keep_from = std::min(keep_from, std::max(o.acked, o.resync_upto) + 1);
    } else if (o.holds_ours) {
      keep_from = std::min(keep_from, o.acked + 1);
    }
    // A node told to wait will ask for what followed another node's view of
    // this one: what the log held then stays.
    if (o.waiting) keep_from = std::min(keep_from, o.wait_floor);
  }
  while (!log_.empty() && (log_.front().seq < keep_from || log_bytes_ > kLogBytes)) {
    if (log_.size() == 1 && log_.front().seq >= keep_from) break;
    log_bytes_ -= log_.front().bytes.size();
    log_.pop_front();
  }
}

void Cluster::drop_resync(Out& o) {
  o.resync.clear();
  o.walk.reset();
  o.resync_active = false;
}

void Cluster::presize(const google::protobuf::RepeatedPtrField<proto::TableSize>& sizes) {
  if (sizes.empty()) return;
  proto::Presize p;
  for (const proto::TableSize& size : sizes) {
    auto t = tables_.find(size.table());
    if (t == tables_.end() || !t->second->def().sync) continue;
    t->second->presize(static_cast<size_t>(size.entries()));
    *p.add_tables() = size;
  }
  if (p.tables_size() > 0 && presize_) presize_(p);
}

void Cluster::update_hold(int64_t now) {
  bool receiving = false;
  for (const auto& [name, in] : in_) {
    receiving |= in.resyncing && now - in.resync_last_part < kResyncStalledMs;
  }
  backlog_.hold(receiving);
}

void Cluster::start_resync(Out& o, const char* why) {
  flush();  // what was gathered gets its number before the tables are read
  backlog_.settle();
  drop_resync(o);
  auto w = std::make_unique<ResyncWalk>();
  w->m.set_protocol(kNodeProtocolVersion);
  proto::NodeResync* r = w->m.mutable_resync();
  r->set_incarnation(incarnation_);
  r->set_upto_seq(last_seq_);
  // What the tables hold of the other nodes: the receiver needs only the rest
  // from them.
  for (const auto& [name, in] : in_) {
    if (name == o.name || in.incarnation == 0 || in.resyncing) continue;
    proto::OriginState* s = r->add_origins();
    s->set_node(name);
    s->set_incarnation(in.incarnation);
    s->set_applied(in.applied);
  }
  add_shares(o.name, r);
  uint64_t entries = 0;
  for (const auto& [name, t] : tables_) {
    if (!t->def().sync || o.refused_tables.count(name)) continue;
    w->tables.push_back(name);
    entries += t->used();
    proto::TableSize* size = r->add_sizes();
    size->set_table(name);
    size->set_entries(t->used());
    auto tombs = tombs_.find(name);
    if (tombs != tombs_.end()) entries += tombs->second.size();
  }
  w->started = mono_now();
  o.walk = std::move(w);
  o.resync_active = true;
  o.resync_upto = last_seq_;
  o.resync_started = o.walk->started;
  o.resync_in_flight = false;
  ++o.resyncs;
  log::notice("peers: full resync of %llu entries to node %s started (%s)",
              static_cast<unsigned long long>(entries), o.name.c_str(), why);
  pump(o);
}

void Cluster::close_part(Out& o, bool last) {
  ResyncWalk& w = *o.walk;
  proto::NodeResync* r = w.m.mutable_resync();
  r->set_part(++w.part);
  r->set_last(last);
  o.resync.emplace_back(w.m.SerializeAsString(), w.in_part);
  r->clear_batches();
  // What part 1 says of the whole resync goes once.
  r->clear_origins();
  r->clear_conn_cur();
  r->clear_sizes();
  w.in_part = 0;
  // It leaves now: the receiver applies it while the next one is read.
  send_parts(o);
}

void Cluster::resync_step(Out& o) {
  // What is kept since start_resync (which settled the backlog) is left out
  // of the shards still to read, as if it had come after them: this node's
  // own updates follow the resync as updates, and a node whose resync is
  // coming in here is not among the origins, so the receiver takes its
  // updates from that node.
  ResyncWalk& w = *o.walk;
  proto::NodeResync* r = w.m.mutable_resync();
  const stick::Now now = stick::clock_now();
  // A table that went away meanwhile (a reload) is skipped.
  while (w.table < w.tables.size() && !tables_.count(w.tables[w.table])) {
    ++w.table;
    w.shard = 0;
  }
  if (w.table == w.tables.size()) {
    close_part(o, true);
    log::info("peers: full resync to node %s made: %llu entries in %llu parts, %lld ms",
              o.name.c_str(), static_cast<unsigned long long>(w.rows),
              static_cast<unsigned long long>(w.part),
              static_cast<long long>(mono_now() - w.started));
    o.walk.reset();
    return;
  }
  const std::string& name = w.tables[w.table];
  stick::Table& t = *tables_.at(name);
  if (w.shard < stick::Table::kShards) {
    // A few shards at a time: each one is a 32nd of the table.
    const unsigned to = std::min(w.shard + kResyncShardsPerStep, stick::Table::kShards);
    stick::sync::write_shards(t, w.shard, to, proto::TableBatch::REFILL, now,
                              [&](proto::TableBatch b) {
                                w.rows += static_cast<uint64_t>(b.rows_size());
                                w.in_part += static_cast<size_t>(b.rows_size());
                                *r->add_batches() = std::move(b);
                                if (w.in_part >= kResyncPartRows) close_part(o, false);
                              });
    w.shard = to;
    return;
  }
  // Then the deletes it knows of, with their time: the receiver drops an
  // entry it holds unless it was refreshed since.
  auto tombs = tombs_.find(name);
  if (tombs != tombs_.end()) {
    proto::TableBatch* b = nullptr;
    for (const auto& [key, tomb] : tombs->second) {
      if (!b || b->rows_size() >= static_cast<int>(stick::sync::kRowsPerBatch)) {
        if (w.in_part >= kResyncPartRows) close_part(o, false);
        b = r->add_batches();
        b->set_table(name);
        b->set_kind(proto::TableBatch::REFILL);
        b->set_wall_ms(now.wall_ms);
      }
      proto::Row* row = b->add_rows();
      row->set_key(key);
      row->set_flags(stick::sync::kRowErased);
      row->set_hlc(tomb.hlc);
      ++w.rows;
      ++w.in_part;
    }
  }
  ++w.table;
  w.shard = 0;
}

proto::NodeMessage Cluster::hello_message() const {
  proto::NodeMessage m;
  m.set_protocol(kNodeProtocolVersion);
  proto::NodeHello* h = m.mutable_hello();
  h->set_cluster(cfg_.cluster);
  h->set_node(cfg_.local);
  h->set_incarnation(incarnation_);
  h->set_last_seq(last_seq_);
  h->set_version(version());
  h->set_node_started(node_started_);
  for (const auto& [name, t] : tables_) {
    if (!t->def().sync) continue;
    proto::TableDefinition* d = h->add_tables();
    d->set_name(name);
    d->set_key_type(static_cast<uint32_t>(t->def().type));
    d->set_key_size(t->def().key_size);
    d->set_size(t->def().size);
    d->set_expire_ms(t->def().expire_ms);
    for (const stick::Stored& s : t->def().store) {
      d->add_columns(static_cast<uint32_t>(s.datum) << 8 | (s.count & 0xff));
    }
  }
  return m;
}

void Cluster::send_hello(Out& o, int64_t now) {
  const std::string bytes = hello_message().SerializeAsString();
  // On every dealer: only the one whose key the peer has completes its handshake.
  bool taken = false;
  for (size_t i = 0; i < o.dealers.size(); ++i) taken |= send_to(o, bytes, static_cast<int>(i));
  const bool connecting = !taken && now - o.dealers_made < kNewDealersMs;
  o.next_hello = now + (connecting ? kHelloSoonMs : kHelloRetryMs);
}

void Cluster::rehello() {
  const int64_t now = mono_now();
  for (auto& [name, o] : out_) {
    if (o.linked) send_hello(o, now);  // its welcome lists the tables it refuses now
  }
}

void Cluster::link_lost(Out& o, const char* why) {
  if (!o.linked) return;
  o.linked = false;
  o.active = -1;
  o.state_since = mono_now();
  drop_resync(o);
  log::warning("peers: link to node %s (%s) lost: %s", o.name.c_str(), o.address.c_str(), why);
}

void Cluster::on_welcome(Out& o, int dealer, const proto::NodeWelcome& w) {
  const int64_t now = mono_now();
  o.last_heard = now;
  if (w.wait()) {
    // It takes the whole tables from another node first, this node's updates
    // among them: hello again shortly, and it says what it got.
    if (!o.waiting) {
      log::info("peers: node %s takes a full resync from another node first", o.name.c_str());
      o.wait_floor = log_.empty() ? last_seq_ + 1 : log_.front().seq;
    }
    o.waiting = true;
    o.linked = false;
    o.active = -1;
    drop_resync(o);
    o.resync_in_flight = false;
    o.next_hello = now + kWaitHelloMs;
    return;
  }
  o.waiting = false;
  // The answer to a hello repeated while the first one was on its way: the
  // resync the first welcome started goes on (making it again would read
  // every table again).
  if (o.linked && dealer == o.active && (o.resync_active || o.resync_in_flight) &&
      w.your_incarnation() != incarnation_) {
    return;
  }
  o.refused_tables.clear();
  for (const std::string& t : w.refused_tables()) o.refused_tables.insert(t);
  o.resync_in_flight = false;
  const bool was_linked = o.linked;
  o.linked = true;
  o.active = dealer;
  o.state_since = now;
  o.rewound_at = UINT64_MAX;
  o.acked = w.your_incarnation() == incarnation_ ? w.applied() : 0;
  o.holds_ours = w.your_incarnation() == incarnation_;
  if (!was_linked) {
    log::notice("peers: linked to node %s (%s)", o.name.c_str(), o.address.c_str());
    send_all_servers(o);  // the server states first: the newer of each part wins there
  }
  if (w.your_incarnation() == incarnation_ && w.applied() <= last_seq_ &&
      (w.applied() == last_seq_ || (!log_.empty() && w.applied() + 1 >= log_.front().seq))) {
    o.next_seq = w.applied() + 1;
    drop_resync(o);
    pump(o);
  } else if (w.your_incarnation() == incarnation_ && w.applied() > last_seq_) {
    // It counts more of this incarnation than this node made: not possible
    // unless its state is confused; the whole tables set it straight.
    start_resync(o, "it claims updates this node never made");
  } else {
    start_resync(o, w.your_incarnation() == 0 ? "it holds nothing of this node"
                                              : "it holds an older run of this node");
  }
}

void Cluster::on_ack(Out& o, const proto::NodeAck& a) {
  o.last_heard = mono_now();
  if (a.your_incarnation() != incarnation_) {
    // It lost this node's updates (it restarted): the whole tables, unless a
    // resync is on its way already (and not lost on the way).
    o.holds_ours = false;
    const bool waiting =
        o.resync_active || (o.resync_in_flight && mono_now() - o.resync_started < 10000);
    if (!waiting) start_resync(o, "it does not hold this node's current updates");
    return;
  }
  o.resync_in_flight = false;
  o.holds_ours = true;
  o.acked = std::max(o.acked, a.applied());
  if (a.gap() && a.applied() != o.rewound_at && o.next_seq > a.applied() + 1) {
    o.rewound_at = a.applied();
    o.next_seq = a.applied() + 1;
  }
  trim_log();
  pump(o);
}

// ---- receiving --------------------------------------------------------------------------

void Cluster::reply(const std::string& id, const proto::NodeMessage& m) {
  if (!router_) return;
  const std::string bytes = m.SerializeAsString();
  try {
    if (!router_->send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return;
    }
    router_->send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // Gone meanwhile: its next hello starts again.
  }
}

void Cluster::refusal(const std::string& address, const std::string& node, const std::string& why) {
  ++refused_;
  // Counted for the node it names, or else for the node listed at its address.
  std::string counted = node;
  for (const PeerNode& n : cfg_.nodes) {
    if (counted.empty() && n.name != cfg_.local && host_of(n.addr) == address) counted = n.name;
  }
  if (!counted.empty()) {
    In& in = in_[counted];
    in.name = counted;
    ++in.refused;
  }
  const int64_t now = mono_now();
  if (refusal_logged_.size() > 1000) refusal_logged_.clear();  // many addresses: forget them
  auto [it, fresh] = refusal_logged_.try_emplace(address + "|" + why, now);
  if (!fresh && now - it->second < kRefusalLogMs) return;
  it->second = now;
  log::warning("peers: refused a connection from %s: %s", address.c_str(), why.c_str());
}

void Cluster::on_hello(const std::string& id, const std::string& address, const std::string& who,
                       const proto::NodeHello& h) {
  proto::NodeMessage answer;
  answer.set_protocol(kNodeProtocolVersion);
  auto refuse = [&](const std::string& why) {
    refusal(address, who, why);
    answer.mutable_refused()->set_reason(why);
    reply(id, answer);
  };
  if (h.cluster() != cfg_.cluster) {
    return refuse("it belongs to cluster '" + h.cluster() + "', this node to '" + cfg_.cluster +
                  "'");
  }
  if (h.node() != who || who.empty()) {
    return refuse("it says it is node '" + h.node() + "' with the key of node '" + who + "'");
  }
  In& in = in_[who];
  in.name = who;
  const int64_t now = mono_now();
  const bool restarted = in.hello_incarnation != 0 && in.hello_incarnation != h.incarnation();
  if (restarted && h.node_started()) {
    // The node started again: the connections its last run counted are gone.
    in.taken_back.clear();
    in.give_back_due = false;
    take_back_conn_cur(in, "restarted", false);
  } else if (in.hello_incarnation != 0) {
    back_from_silence(in);  // the same run, or its agent alone restarted
  }
  if (!in.linked) {
    log::notice("peers: node %s (%s) connected, weir %s", who.c_str(), address.c_str(),
                h.version().c_str());
  }
  // A hello of a new run: the node restarted. What this node sends it must
  // start again now, not after the 2 s its silence would take to notice.
  auto out = out_.find(who);
  if (out != out_.end() && !out->second.waiting) {
    Out& o = out->second;
    if (o.linked && restarted) link_lost(o, "it restarted");
    if (!o.linked) {
      // It listens now: the connections toward it are made again at once,
      // since the old ones may wait up to 50 ms for their next retry.
      if (restarted || !in.linked) remake_dealers(o, now);
      send_hello(o, now);
    }
  }
  in.hello_incarnation = h.incarnation();
  in.linked = true;
  in.last_heard = now;
  in.routing_id = id;
  node_of_id_[id] = who;
  in.their_last = h.last_seq();
  in.refused_tables.clear();
  proto::NodeWelcome* w = answer.mutable_welcome();
  for (const proto::TableDefinition& d : h.tables()) {
    auto it = tables_.find(d.name());
    if (it == tables_.end() || !it->second->def().sync) continue;
    if (d.key_type() != static_cast<uint32_t>(it->second->def().type)) {
      in.refused_tables.insert(d.name());
      w->add_refused_tables(d.name());
      log::warning(
          "peers: table %s has another key type on node %s (%s) than here (%s): it is not "
          "shared with that node",
          d.name().c_str(), who.c_str(),
          std::string(stick::key_type_name(static_cast<stick::KeyType>(d.key_type()))).c_str(),
          std::string(stick::key_type_name(it->second->def().type)).c_str());
    }
  }
  in.covers_all = in.refused_tables.empty();
  for (const auto& [name, t] : tables_) {
    if (!t->def().sync) continue;
    bool listed = false;
    for (const proto::TableDefinition& d : h.tables()) listed = listed || d.name() == name;
    in.covers_all = in.covers_all && listed;
  }
  w->set_node(cfg_.local);
  w->set_incarnation(incarnation_);
  if (in.incarnation == 0 || in.incarnation != h.incarnation()) {
    // Nothing of its current run here. A full resync from another node may
    // have brought it (then it sends the rest), or be on its way (then it
    // waits); else it sends its whole tables.
    auto l = learnt_.find(who);
    const In* source = nullptr;
    if (l != learnt_.end() && l->second.incarnation == h.incarnation() &&
        l->second.applied <= h.last_seq()) {
      in.incarnation = l->second.incarnation;
      in.applied = l->second.applied;
      in.gap = false;
      log::notice(
          "peers: node %s's updates up to %llu came with node %s's full resync; it sends the "
          "rest",
          who.c_str(), static_cast<unsigned long long>(in.applied), l->second.via.c_str());
      learnt_.erase(l);
    } else if ((source = full_resync_source(who, now)) != nullptr) {
      if (!in.waiting) {
        log::info("peers: node %s waits for the full resync from node %s", who.c_str(),
                  source->name.c_str());
      }
      in.waiting = true;
      w->set_wait(true);
      reply(id, answer);
      return;
    } else {
      in.full_expected_at = now;
    }
  }
  in.waiting = false;
  w->set_your_incarnation(in.incarnation);
  w->set_applied(in.applied);
  reply(id, answer);
}

const Cluster::In* Cluster::full_resync_source(const std::string& who, int64_t now) const {
  for (const auto& [name, y] : in_) {
    if (name == who || !y.linked || !y.covers_all) continue;
    if (y.resyncing || (y.full_expected_at >= 0 && now - y.full_expected_at < kWaitForSourceMs)) {
      return &y;
    }
  }
  return nullptr;
}

size_t Cluster::apply(In& in, const proto::TableBatch& b, std::string_view raw) {
  if (in.refused_tables.count(b.table())) return 0;
  auto it = tables_.find(b.table());
  if (it == tables_.end() || !it->second->def().sync) return 0;
  auto tombs = tombs_.find(b.table());
  if (tombs != tombs_.end()) {
    // Rows older than a delete this node knows of are not applied: a node
    // that comes back with the entry in its saved tables, or a late update
    // from before the delete, must not bring it back.
    proto::TableBatch kept;
    if (drop_deleted(b, tombs->second, kept)) {
      if (kept.rows_size() == 0) return 0;
      in.conn_cur.count(kept);
      return apply_kept(it->second, kept, {});
    }
  }
  in.conn_cur.count(b);
  return apply_kept(it->second, b, raw);
}

void Cluster::apply_here(const stick::sync::ConnCurLedger& l, int sign) {
  const stick::Now now = stick::clock_now();
  for (const proto::TableBatch& b : l.batches(sign, now.wall_ms)) {
    auto t = tables_.find(b.table());
    if (t == tables_.end()) continue;
    deliver_(b, {});
    backlog_.apply(t->second, b);
  }
}

void Cluster::add_shares(const std::string& to, proto::NodeResync* r) const {
  const int64_t wall = stick::clock_now().wall_ms;
  auto add = [&](const std::string& node, const stick::sync::ConnCurLedger& l) {
    if (l.empty()) return;
    proto::ConnCurShare* share = r->add_conn_cur();
    share->set_node(node);
    for (proto::TableBatch& b : l.batches(1, wall)) {
      if (sync_table(b.table())) *share->add_batches() = std::move(b);
    }
  };
  if (own_conn_cur_) add(cfg_.local, own_conn_cur_());
  for (const auto& [name, in] : in_) {
    if (name != to && !in.resyncing) add(name, in.conn_cur);
  }
}

void Cluster::adopt_shares(In& in) {
  const int64_t now = mono_now();
  for (const proto::ConnCurShare& share : in.resync_shares) {
    const std::string& node = share.node();
    if (node == cfg_.local || !cfg_.node(node)) continue;  // this node knows its own
    if (node != in.name) {
      // A node whose updates this one applies itself keeps its own account.
      bool held = false;
      for (const proto::OriginState& s : in.resync_origins) {
        auto it = in_.find(s.node());
        if (s.node() == node && it != in_.end() && it->second.incarnation == s.incarnation()) {
          held = true;
        }
      }
      if (held) continue;
    }
    auto [it, fresh] = in_.try_emplace(node);
    In& of = it->second;
    if (fresh) {
      // Never heard from: counted as heard now, so that it is taken back
      // after dead_after if it never speaks.
      of.name = node;
      of.last_heard = now;
    }
    of.conn_cur.clear();
    for (const proto::TableBatch& b : share.batches()) of.conn_cur.count(b);
  }
}

void Cluster::take_back_conn_cur(In& in, const char* why, bool keep) {
  stick::sync::ConnCurLedger gone = in.conn_cur.take_positive();
  if (gone.empty()) return;
  log::notice(
      "peers: node %s %s: the connections it counted on %zu key(s) no longer count in "
      "conn_cur here",
      in.name.c_str(), why, gone.keys());
  apply_here(gone, -1);
  if (keep) in.taken_back.add(gone);
}

void Cluster::back_from_silence(In& in) {
  if (!in.taken_back.empty()) in.give_back_due = true;
}

void Cluster::forget_nodes() {
  for (auto& [name, in] : in_) take_back_conn_cur(in, "is no longer in the cluster", false);
}

void Cluster::give_back_conn_cur(In& in) {
  in.give_back_due = false;
  if (in.taken_back.empty()) return;
  log::notice(
      "peers: node %s is back: the connections it counted on %zu key(s) count in conn_cur "
      "again",
      in.name.c_str(), in.taken_back.keys());
  apply_here(in.taken_back, 1);
  in.conn_cur.add(in.taken_back);
  in.taken_back.clear();
}

size_t Cluster::apply_kept(const std::shared_ptr<stick::Table>& t, const proto::TableBatch& b,
                           std::string_view raw) {
  // The workers get the batch first: they apply it while this process does
  // (or, during a full resync, before it).
  deliver_(b, raw);
  backlog_.apply(t, b, raw);
  note_tombs(b);
  return static_cast<size_t>(b.rows_size());
}

bool Cluster::drop_deleted(const proto::TableBatch& b, const std::map<std::string, Tomb>& tombs,
                           proto::TableBatch& kept) {
  auto stale = [&](const proto::Row& row) {
    if (row.flags() & stick::sync::kRowErased) return false;
    auto tomb = tombs.find(row.key());
    if (tomb == tombs.end()) return false;
    const bool absolute =
        (row.flags() & stick::sync::kRowAbsolute) || b.kind() != proto::TableBatch::DELTA;
    const int64_t touched_wall = b.wall_ms() - (absolute ? static_cast<int64_t>(row.idle_ms()) : 0);
    return touched_wall <= static_cast<int64_t>(tomb->second.hlc >> 16);
  };
  int first = 0;
  while (first < b.rows_size() && !stale(b.rows(first))) ++first;
  if (first == b.rows_size()) return false;
  kept = b;
  kept.clear_rows();
  for (int i = 0; i < b.rows_size(); ++i) {
    if (i >= first && stale(b.rows(i))) {
      ++stale_rows_;
      continue;
    }
    *kept.add_rows() = b.rows(i);
  }
  return true;
}

void Cluster::on_updates(In& in, const proto::NodeUpdates& u,
                         const std::vector<std::string_view>& raw) {
  if (in.resyncing) return;  // the resync's end says where to go on from
  if (u.incarnation() != in.incarnation) {
    in.ack_due = true;  // the ack names what this node has: the sender resyncs it
    return;
  }
  if (u.seq() <= in.applied) return;  // sent again after a gap: had it
  if (u.seq() != in.applied + 1) {
    in.gap = true;
    in.ack_due = true;
    return;
  }
  if (in.give_back_due) give_back_conn_cur(in);  // before what it did meanwhile
  for (int i = 0; i < u.batches_size(); ++i) {
    in.received += apply(in, u.batches(i), raw_at(raw, i));
  }
  in.applied = u.seq();
  in.gap = false;
  in.ack_due = true;
}

void Cluster::on_resync(In& in, const proto::NodeResync& r,
                        const std::vector<std::string_view>& raw) {
  const int64_t now = mono_now();
  if (r.part() == 1) {
    in.resyncing = true;
    in.resync_started = now;
    in.resync_rows = 0;
    in.resync_stale_from = stale_rows_;
    in.resync_origins.assign(r.origins().begin(), r.origins().end());
    in.resync_shares.assign(r.conn_cur().begin(), r.conn_cur().end());
    presize(r.sizes());
    // Its tables come whole, with what its connections count now.
    in.taken_back.clear();
    in.give_back_due = false;
    log::notice("peers: full resync from node %s started", in.name.c_str());
  }
  if (!in.resyncing) return;
  in.resync_last_part = now;
  update_hold(now);
  for (int i = 0; i < r.batches_size(); ++i) {
    in.resync_rows += apply(in, r.batches(i), raw_at(raw, i));
  }
  if (!r.last()) return;
  in.resyncing = false;
  update_hold(now);
  in.incarnation = r.incarnation();
  in.applied = r.upto_seq();
  in.gap = false;
  in.ack_due = true;
  in.full_expected_at = -1;
  ++in.resyncs;
  for (const proto::OriginState& s : in.resync_origins) {
    if (!in.covers_all) break;  // it did not bring every table
    if (s.node() == cfg_.local || s.node() == in.name) continue;
    auto held = in_.find(s.node());
    if (held != in_.end() && held->second.incarnation == s.incarnation()) continue;
    learnt_[s.node()] = Learnt{s.incarnation(), s.applied(), in.name};
  }
  adopt_shares(in);
  in.resync_origins.clear();
  in.resync_shares.clear();
  log::notice(
      "peers: full resync from node %s complete: %llu entries in %lld ms (%llu older than a "
      "delete left out)",
      in.name.c_str(), static_cast<unsigned long long>(in.resync_rows),
      static_cast<long long>(now - in.resync_started),
      static_cast<unsigned long long>(stale_rows_ - in.resync_stale_from));
}

void Cluster::receive(const std::string& id, std::string_view bytes, const std::string& address,
                      const std::string& user) {
  // On an arena: a resync part holds thousands of rows, each a message of its
  // own, all freed at once at the end.
  google::protobuf::Arena arena;
  proto::NodeMessage& m = *google::protobuf::Arena::CreateMessage<proto::NodeMessage>(&arena);
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    refusal(address, user, "an undecodable message");
    return;
  }
  if (m.has_hello()) {
    if (m.protocol() < kOldestNodeProtocol) {
      refusal(address, user, "it speaks an older protocol");
      return;
    }
    on_hello(id, address, user, m.hello());
    return;
  }
  auto known = node_of_id_.find(id);
  if (known == node_of_id_.end()) {
    // A connection this agent has not been introduced to (it restarted, or
    // made its socket again): the sender says hello now rather than after
    // 2 s of silence.
    proto::NodeMessage again;
    again.set_protocol(kNodeProtocolVersion);
    again.mutable_refused()->set_hello_first(true);
    reply(id, again);
    return;
  }
  auto it = in_.find(known->second);
  if (it == in_.end()) return;
  In& in = it->second;
  in.last_heard = mono_now();
  if (!in.linked) {
    in.linked = true;
    log::notice("peers: node %s is back", in.name.c_str());
    back_from_silence(in);  // a new run would have said hello first
  }
  switch (m.body_case()) {
    case proto::NodeMessage::kUpdates:
      on_updates(
          in, m.updates(),
          batch_bytes(bytes, proto::NodeMessage::kUpdatesFieldNumber, m.updates().batches_size()));
      break;
    case proto::NodeMessage::kResync:
      on_resync(
          in, m.resync(),
          batch_bytes(bytes, proto::NodeMessage::kResyncFieldNumber, m.resync().batches_size()));
      break;
    case proto::NodeMessage::kServers:
      on_servers(m.servers());
      break;
    case proto::NodeMessage::kHeartbeat:
      in.their_last = m.heartbeat().last_seq();
      if (m.heartbeat().incarnation() == in.incarnation && in.their_last > in.applied &&
          !in.resyncing) {
        in.gap = true;  // updates it made never came: ask for them again
      } else if (m.heartbeat().incarnation() == in.incarnation && in.give_back_due &&
                 !in.resyncing) {
        give_back_conn_cur(in);  // nothing missed: nothing happened meanwhile
      }
      in.ack_due = true;
      break;
    default:
      break;  // from a newer node: nothing this one needs
  }
}

void Cluster::send_acks() {
  for (auto& [name, in] : in_) {
    if (!in.ack_due || in.routing_id.empty()) continue;
    in.ack_due = false;
    proto::NodeMessage m;
    m.set_protocol(kNodeProtocolVersion);
    proto::NodeAck* a = m.mutable_ack();
    a->set_your_incarnation(in.incarnation);
    a->set_applied(in.applied);
    if (in.gap && in.gap_nacked != in.applied) {
      a->set_gap(true);
      in.gap_nacked = in.applied;
    } else if (!in.gap) {
      in.gap_nacked = UINT64_MAX;
    }
    reply(in.routing_id, m);
  }
}

void Cluster::receive_answer(const std::string& name, int dealer, std::string_view bytes) {
  auto it = out_.find(name);
  if (it != out_.end()) on_dealer_message(it->second, dealer, bytes);
}

void Cluster::adopt(const PeersConfig& cfg) {
  cfg_ = cfg;
  for (const PeerNode& n : cfg_.nodes) {
    if (n.name == cfg_.local) continue;
    Out& o = out_[n.name];
    o.name = n.name;
    o.address = n.address;
  }
}

void Cluster::on_dealer_message(Out& o, int dealer, std::string_view body) {
  proto::NodeMessage m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) return;
  switch (m.body_case()) {
    case proto::NodeMessage::kWelcome:
      on_welcome(o, dealer, m.welcome());
      break;
    case proto::NodeMessage::kAck:
      if (o.linked && dealer == o.active) on_ack(o, m.ack());
      break;
    case proto::NodeMessage::kRefused: {
      const int64_t now = mono_now();
      if (m.refused().hello_first()) {
        if (o.linked) {
          o.linked = false;
          o.active = -1;
          o.state_since = now;
          drop_resync(o);
        }
        send_hello(o, now);
        break;
      }
      auto [it, fresh] = refusal_logged_.try_emplace("by " + o.name, now);
      if (fresh || now - it->second >= kRefusalLogMs) {
        it->second = now;
        log::warning("peers: node %s (%s) refused this node: %s", o.name.c_str(), o.address.c_str(),
                     m.refused().reason().c_str());
      }
      link_lost(o, "refused");
      o.next_hello = now + 1000;  // it will not change its mind soon
      break;
    }
    default:
      break;
  }
}

// ---- the loop ---------------------------------------------------------------------------

void Cluster::poll_items(std::vector<zmq::pollitem_t>& items) {
  first_item_ = items.size();
  const auto in_if = [](bool yes) { return static_cast<short>(yes ? ZMQ_POLLIN : 0); };
  items.push_back({zap_ ? zap_->socket().handle() : nullptr, -1, in_if(zap_ != nullptr), 0});
  items.push_back({router_ ? router_->handle() : nullptr, -1, in_if(router_ != nullptr), 0});
  for (auto& [name, o] : out_) {
    const bool backlog = o.linked && (o.resync_active || o.next_seq <= last_seq_);
    for (auto& d : o.dealers) {
      items.push_back(
          {d->handle(), -1, static_cast<short>(ZMQ_POLLIN | (backlog ? ZMQ_POLLOUT : 0)), 0});
    }
  }
}

void Cluster::handle(const zmq::pollitem_t* items, size_t n) {
  if (first_item_ + 2 > n) return;
  const zmq::pollitem_t* mine = items + first_item_;
  if (zap_ && (mine[0].revents & ZMQ_POLLIN)) {
    zap_->handle([&](const std::string& address, const std::string& key) {
      refusal(address, "",
              key.empty() ? "not a CURVE client"
                          : "its public key " + key + " is not listed in peers.nodes");
    });
  }
  if (router_) {
    // A bounded turn: the parts of a full resync take about a millisecond
    // each, and the agent's workers (one that starts meanwhile, to begin
    // with) must not wait for the last of them.
    const int64_t until = mono_now() + kTurnMs;
    for (int i = 0; i < 4096 && (i == 0 || mono_now() < until); ++i) {
      zmq::message_t id, body;
      try {
        if (!router_->recv(id, zmq::recv_flags::dontwait)) break;
        if (!id.more() || !router_->recv(body, zmq::recv_flags::none)) continue;
        bool more = body.more();
        while (more) {
          zmq::message_t extra;
          if (!router_->recv(extra, zmq::recv_flags::none)) break;
          more = extra.more();
        }
      } catch (const zmq::error_t&) {
        break;
      }
      receive(id.to_string(), std::string_view(static_cast<const char*>(body.data()), body.size()),
              peer_address(body), user_id(body));
    }
  }
  for (auto& [name, o] : out_) {
    for (size_t d = 0; d < o.dealers.size(); ++d) {
      for (int i = 0; i < 1024; ++i) {
        zmq::message_t body;
        try {
          if (!o.dealers[d]->recv(body, zmq::recv_flags::dontwait)) break;
        } catch (const zmq::error_t&) {
          break;
        }
        on_dealer_message(o, static_cast<int>(d),
                          std::string_view(static_cast<const char*>(body.data()), body.size()));
      }
    }
    pump(o);
  }
  send_acks();
}

int64_t Cluster::next_timer_in(int64_t mono_ms) const {
  int64_t next = next_heartbeat_ - mono_ms;
  for (const auto& [name, o] : out_) {
    if (!o.linked) next = std::min(next, o.next_hello - mono_ms);
    // A full resync being made goes on at the next turn (unless its queue
    // is full: an answer from that node wakes the loop then).
    if (o.linked && o.walk && o.resync.empty()) next = 0;
  }
  return std::max<int64_t>(0, next);
}

void Cluster::timers(int64_t now) {
  flush();
  if (backlog_.held()) update_hold(now);
  if (now >= next_tomb_check_) {
    next_tomb_check_ = now + 10000;
    expire_tombs(now);
  }
  for (auto& [name, o] : out_) {
    if (o.linked && o.last_heard >= 0 && now - o.last_heard > kSilentMs) {
      link_lost(o, "no answer for 2 s");
    }
    if (o.linked && o.walk) pump(o);
    if (!o.linked && now >= o.next_hello) send_hello(o, now);
  }
  for (auto& [name, in] : in_) {
    if (in.linked && now - in.last_heard > kSilentMs) {
      in.linked = false;
      log::warning("peers: node %s went silent", in.name.c_str());
    }
    if (!in.linked && in.last_heard >= 0 && now - in.last_heard >= cfg_.dead_after_ms) {
      take_back_conn_cur(in, "has been unreachable for peers.dead_after", true);
    }
  }
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + kHeartbeatMs;
  proto::NodeMessage m;
  m.set_protocol(kNodeProtocolVersion);
  proto::NodeHeartbeat* hb = m.mutable_heartbeat();
  hb->set_incarnation(incarnation_);
  hb->set_last_seq(last_seq_);
  hb->set_wall_ms(stick::clock_now().wall_ms);
  const std::string bytes = m.SerializeAsString();
  for (auto& [name, o] : out_) {
    if (o.linked) send_to(o, bytes);
  }
  send_acks();
}

void Cluster::stats(google::protobuf::RepeatedPtrField<proto::NodeStats>* out) const {
  const int64_t now = mono_now();
  for (const PeerNode& n : cfg_.nodes) {
    if (n.name == cfg_.local) continue;
    proto::NodeStats* s = out->Add();
    s->set_name(n.name);
    s->set_address(n.address);
    auto o = out_.find(n.name);
    auto in = in_.find(n.name);
    const bool receiving = in != in_.end() && in->second.resyncing;
    if (o != out_.end()) {
      const Out& x = o->second;
      s->set_out_linked(x.linked);
      s->set_since_ms(now - x.state_since);
      const uint64_t in_flight = last_seq_ > x.acked ? last_seq_ - x.acked : 0;
      s->set_in_flight(in_flight);
      int64_t lag = 0;
      if (in_flight && !log_.empty() && x.acked + 1 >= log_.front().seq) {
        lag = now - log_[static_cast<size_t>(x.acked + 1 - log_.front().seq)].made_ms;
      }
      s->set_lag_ms(lag);
      s->set_resync(resync_word(x.resync_active || x.resync_in_flight, receiving));
      s->set_updates_sent(x.sent);
      s->set_resyncs_sent(x.resyncs);
      s->set_payload_bytes_sent(x.bytes);
      s->set_rows_sent(x.rows);
      s->set_heartbeat_age_ms(x.last_heard < 0 ? -1 : now - x.last_heard);
    }
    if (in != in_.end()) {
      s->set_in_linked(in->second.linked);
      s->set_refused(in->second.refused);
      s->set_updates_received(in->second.received);
      s->set_resyncs_received(in->second.resyncs);
      if (o == out_.end()) s->set_resync(resync_word(false, receiving));
    }
  }
}

}  // namespace weir::peers
