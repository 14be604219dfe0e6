#pragma once
// The network half of the peers agent (doc/peers.md for operators,
// doc/peers-protocol.md for the wire): this node's links to the other nodes
// of its cluster, which carry the synchronised stick tables both ways.
//
// Sockets. One ROUTER bound at peers.bind, and one DEALER per other node
// connected to that node's ROUTER (two while its key rotates: one per listed
// key, only the right one completes its handshake). Every socket runs CURVE;
// a ZAP handler (zap.h) lets in only the public keys peers.nodes lists and
// names the node a key belongs to. Each direction has its own connection, so
// two nodes starting at once never collide: X's updates go out on X's DEALER,
// Y answers on that connection.
//
// Sending. The updates this node originates (its workers' DELTA batches of
// synchronised tables) are gathered during a turn of the loop and leave as
// one NodeUpdates with the next sequence number, kept in a bounded log. Each
// peer has a cursor in that log, moved on by its acks. A slow or absent peer
// never blocks the loop and never grows a buffer: sends do not wait (the
// DEALER holds at most kSendHighWater messages), the cursor stays behind, and
// a peer that falls out of the log gets the tables' current state instead (a
// full resync), in which every key is sent once however often it changed.
//
// Receiving. Updates of each origin are applied in sequence order; one out
// of order is dropped and answered with a gap ack, which rewinds the sender.
// A new or restarted origin (another incarnation) is resynced whole first.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/config/config.h"
#include "common/proto/peers.pb.h"
#include "common/servers/record.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"
#include "peers/backlog.h"

namespace weir::peers {

class ZapHandler;

// The agent's tables, by name.
using Tables = std::map<std::string, std::shared_ptr<stick::Table>>;

class Cluster {
 public:
  // `deliver`: a batch from another node for the local workers (with its
  // serialised bytes when they came as they are, or empty), before it goes to
  // `tables` through `backlog`, which holds what a full resync brings while
  // it comes in.
  Cluster(zmq::context_t& ctx, const Tables& tables, Backlog& backlog, uint64_t incarnation,
          std::function<void(const proto::TableBatch&, std::string_view)> deliver);
  ~Cluster();

  // Binds and connects for `cfg` (on start, and on a reload that changed it:
  // sockets are made again, the sequence and the log stay). false with *error
  // when this node cannot listen.
  bool configure(const PeersConfig& cfg, std::string* error);
  const PeersConfig& config() const { return cfg_; }

  // Introduces this node again to every other node (its tables changed).
  void rehello();

  // A DELTA batch this node originated, for the other nodes (sent at flush()).
  void publish(const proto::TableBatch& b);
  // Server states (common/servers/record.h): `store` is the agent's, which
  // this node sends whole to each node it links to; records that came from
  // another node and changed it go to `deliver`.
  void share_servers(servers::Store* store,
                     std::function<void(const proto::ServerRecords&)> deliver) {
    servers_ = store;
    deliver_servers_ = std::move(deliver);
  }
  // Where presize() tells the workers (Agent: a Presize to each of them).
  void on_presize(std::function<void(const proto::Presize&)> fn) { presize_ = std::move(fn); }
  // Records that changed here, for every linked node.
  void publish_servers(const proto::ServerRecords& rs);
  // Numbers what publish() gathered and sends what each peer can take.
  void flush();

  // The sockets to poll, appended to `items`; handle() reads what came.
  void poll_items(std::vector<zmq::pollitem_t>& items);
  void handle(const zmq::pollitem_t* items, size_t n);
  void timers(int64_t mono_ms);
  // How soon timers() wants to run, in ms.
  int64_t next_timer_in(int64_t mono_ms) const;

  void stats(google::protobuf::RepeatedPtrField<proto::NodeStats>* out) const;

  // What the sockets deliver, as handle() passes it on; public for the fuzz
  // target (tests/fuzz/node_message_fuzz.cpp), which feeds them bytes without
  // sockets after adopt().
  // A message on the ROUTER: `user` is the node the ZAP handler let in.
  void receive(const std::string& id, std::string_view bytes, const std::string& address,
               const std::string& user);
  // A message on the DEALER toward node `name` (number `dealer` of its keys).
  void receive_answer(const std::string& name, int dealer, std::string_view bytes);
  // `cfg` without a socket: the fuzz target's cluster.
  void adopt(const PeersConfig& cfg);
  void set_dead_after(int64_t ms) { cfg_.dead_after_ms = ms; }
  void set_node_started(bool yes) { node_started_ = yes; }
  // This node's own share of conn_cur (its workers'), for the full resyncs
  // it sends.
  void set_own_conn_cur(std::function<stick::sync::ConnCurLedger()> f) {
    own_conn_cur_ = std::move(f);
  }
  // Takes back what every other node counted in conn_cur (this node leaves
  // the cluster).
  void forget_nodes();
  uint64_t refused() const { return refused_; }

 private:
  // A full resync being made: the tables are read a few shards at a time, and
  // the parts leave as they are made.
  struct ResyncWalk {
    std::vector<std::string> tables;  // the tables it carries, in order
    size_t table = 0;                 // the one being read
    unsigned shard = 0;               // its next shard (kShards: its tombstones)
    proto::NodeMessage m;             // the part being filled
    size_t in_part = 0;               // rows in it
    uint64_t part = 0, rows = 0;      // made so far
    int64_t started = 0;
  };
  // This node's side of its link to one other node: what it sends.
  struct Out {
    std::string name;
    std::string address;
    std::vector<std::unique_ptr<zmq::socket_t>> dealers;  // one per listed key
    int64_t dealers_made = 0;
    int active = -1;      // the dealer the welcome came on
    bool linked = false;  // welcomed, and heard from lately
    int64_t state_since = 0;
    int64_t last_heard = -1;
    int64_t next_hello = 0;
    uint64_t next_seq = 1;                                // the next update to send
    uint64_t acked = 0;                                   // what it acknowledged
    uint64_t rewound_at = UINT64_MAX;                     // the gap ack already acted on
    std::deque<std::pair<std::string, uint64_t>> resync;  // parts still to send, with their rows
    uint64_t resync_upto = 0;
    int64_t resync_started = 0;
    std::unique_ptr<ResyncWalk> walk;  // the resync's parts still being made
    bool resync_active = false;        // parts still to make or to send
    bool resync_in_flight = false;     // sent, its acks not seen yet
    bool waiting = false;              // it takes a full resync from another node first
    bool holds_ours = false;           // it holds this run's updates up to `acked`
    uint64_t wait_floor = 0;           // while waiting: the log keeps updates from this one
    std::set<std::string> refused_tables;
    uint64_t sent = 0, resyncs = 0, bytes = 0, rows = 0;
  };
  // What this node receives from one other node.
  struct In {
    std::string name;
    std::string routing_id;
    bool linked = false;
    int64_t last_heard = -1;
    uint64_t incarnation = 0;        // whose updates `applied` counts
    uint64_t hello_incarnation = 0;  // the run its last hello came from
    uint64_t applied = 0;
    uint64_t their_last = 0;  // the newest update its heartbeat named
    bool ack_due = false;
    bool gap = false;
    uint64_t gap_nacked = UINT64_MAX;
    bool resyncing = false;
    int64_t resync_started = 0;
    int64_t resync_last_part = 0;  // when its latest part came
    uint64_t resync_rows = 0;
    uint64_t resync_stale_from = 0;  // stale_rows_ when the resync began
    // Told to send its whole tables (it held nothing here) at this time; -1
    // once they came. Others that hold nothing here wait meanwhile.
    int64_t full_expected_at = -1;
    bool waiting = false;  // told to wait for another node's full resync
    // It shares every table this node synchronises (its full resync can
    // stand for the other nodes').
    bool covers_all = false;
    // What the resync under way had applied of the other nodes, and each
    // node's share of conn_cur in it (its part 1).
    std::vector<proto::OriginState> resync_origins;
    std::vector<proto::ConnCurShare> resync_shares;
    std::set<std::string> refused_tables;
    uint64_t received = 0, resyncs = 0, refused = 0;
    // What its updates added to conn_cur here, and what was taken back when
    // it stayed unreachable for peers.dead_after (given back if the same run
    // of it returns).
    stick::sync::ConnCurLedger conn_cur, taken_back;
    // Back, the same run: taken_back is given back before the first update
    // that continues where it left off (or when its heartbeat says none is
    // missing); a full resync instead carries it already.
    bool give_back_due = false;
  };
  // A delete, kept so that a full resync carries it (a node that was away
  // with the entry still in its state file drops it).
  struct Tomb {
    uint64_t hlc;     // when it was deleted: wall ms << 16
    int64_t made_ms;  // monotonic, for its own expiry
  };
  struct LogEntry {
    uint64_t seq;
    int64_t made_ms;  // monotonic
    std::string bytes;
    uint64_t rows;
  };

  void close_dealers();
  std::unique_ptr<zmq::socket_t> make_dealer(const std::string& server_key, const PeerNode& node);
  // A connection to node n per key it lists (closing any it had).
  void open_dealers(Out& o, const PeerNode& n, int64_t now);
  // New connections to a node known to listen now, rather than at the old
  // ones' next retry.
  void remake_dealers(Out& o, int64_t now);
  void on_dealer_message(Out& o, int dealer, std::string_view body);
  void on_hello(const std::string& id, const std::string& address, const std::string& who,
                const proto::NodeHello& h);
  // `raw`: each batch's bytes in the message, or empty.
  void on_updates(In& in, const proto::NodeUpdates& u, const std::vector<std::string_view>& raw);
  void on_resync(In& in, const proto::NodeResync& r, const std::vector<std::string_view>& raw);
  // Part 1 of a full resync says how large the tables will be: this agent's
  // and its workers' indexes are made that large at once.
  void presize(const google::protobuf::RepeatedPtrField<proto::TableSize>& sizes);
  // Holds the backlog while a full resync comes in (and has not stalled).
  void update_hold(int64_t now);
  // The node whose full resync is on its way here (a node other than `who`
  // that holds nothing here waits for it), or null.
  const In* full_resync_source(const std::string& who, int64_t now) const;
  void on_welcome(Out& o, int dealer, const proto::NodeWelcome& w);
  void on_ack(Out& o, const proto::NodeAck& a);
  // Applies one batch of another node to the local table and passes it on.
  size_t apply(In& in, const proto::TableBatch& b, std::string_view raw);
  // A node's conn_cur contribution here: taken back (it is gone, or came
  // back as a new run) or given back (the same run returned). Applied to
  // this node only: each node settles what it counted of the others.
  void take_back_conn_cur(In& in, const char* why, bool keep);
  void give_back_conn_cur(In& in);
  void back_from_silence(In& in);
  void apply_here(const stick::sync::ConnCurLedger& l, int sign);
  // Part 1 of a full resync to another node: each node's share of conn_cur.
  void add_shares(const std::string& to, proto::NodeResync* r) const;
  // At the end of a full resync from `in`: the shares it brought stand for
  // what this node knew of each node it did not hold itself.
  void adopt_shares(In& in);
  void send_acks();
  void reply(const std::string& id, const proto::NodeMessage& m);
  bool send_to(Out& o, const std::string& bytes, int dealer = -1);
  void pump(Out& o);
  // The resync parts made and not sent yet, in order; false when o's queue is full.
  bool send_parts(Out& o);
  void start_resync(Out& o, const char* why);
  // One slice of the resync being made (a few shards, or a table's
  // tombstones); the last one closes the last part.
  void resync_step(Out& o);
  void close_part(Out& o, bool last);
  void drop_resync(Out& o);
  // Drops from the log what no node will be sent again (and the oldest
  // beyond its size).
  void trim_log();
  void link_lost(Out& o, const char* why);
  void send_hello(Out& o, int64_t now);
  proto::NodeMessage hello_message() const;
  bool sync_table(const std::string& name) const;
  // The deletes and revivals of a batch (this node's or another's).
  void note_tombs(const proto::TableBatch& b);
  void expire_tombs(int64_t now);
  // Applies a batch of another node's (after drop_deleted) and hands it on.
  size_t apply_kept(const std::shared_ptr<stick::Table>& t, const proto::TableBatch& b,
                    std::string_view raw);
  // Copies into `kept` the rows of b that no tomb is newer than; false (and
  // nothing copied) when every row stays.
  bool drop_deleted(const proto::TableBatch& b, const std::map<std::string, Tomb>& tombs,
                    proto::TableBatch& kept);
  void refusal(const std::string& address, const std::string& node, const std::string& why);

  zmq::context_t& ctx_;
  const Tables& tables_;
  Backlog& backlog_;
  const uint64_t incarnation_;
  bool node_started_ = true;
  std::function<stick::sync::ConnCurLedger()> own_conn_cur_;
  std::function<void(const proto::TableBatch&, std::string_view)> deliver_;
  std::function<void(const proto::Presize&)> presize_;
  servers::Store* servers_ = nullptr;
  std::function<void(const proto::ServerRecords&)> deliver_servers_;
  void send_all_servers(Out& o);
  void on_servers(const proto::ServerRecords& rs);
  PeersConfig cfg_;
  std::unique_ptr<ZapHandler> zap_;
  std::unique_ptr<zmq::socket_t> router_;
  std::map<std::string, Out> out_;                 // by node name
  std::map<std::string, In> in_;                   // by node name
  std::map<std::string, std::string> node_of_id_;  // routing id -> node name (after hello)
  // What a full resync brought of a node this one held nothing of: its
  // incarnation and the sequence it covered; that node then sends the rest.
  struct Learnt {
    uint64_t incarnation = 0;
    uint64_t applied = 0;
    std::string via;
  };
  std::map<std::string, Learnt> learnt_;
  std::vector<proto::TableBatch> gathered_;
  size_t gathered_rows_ = 0;
  std::map<std::string, std::map<std::string, Tomb>> tombs_;  // by table, by key
  size_t tomb_count_ = 0;
  uint64_t stale_rows_ = 0;  // rows not applied: older than a delete
  int64_t next_tomb_check_ = 0;
  std::deque<LogEntry> log_;
  size_t log_bytes_ = 0;
  uint64_t last_seq_ = 0;
  int64_t next_heartbeat_ = 0;
  std::map<std::string, int64_t> refusal_logged_;  // address|why -> when it was last logged
  // Where each socket's items start in the last poll_items().
  size_t first_item_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace weir::peers
