#pragma once
// The peers agent (doc/stick-tables.md "Reloads, restarts and the peers
// agent", doc/architecture.md "The peers agent"): one process per node,
// started and respawned by the master whenever a stick table is configured,
// alive across reloads. It holds a replica of every table and links every
// worker process, old and new generations alike, over a ZeroMQ ROUTER socket
// on an ipc:// path in a directory only weir's account can reach:
//
//   worker -> agent   LinkHello, then DELTA batches of what the worker counted
//                     (the agent applies them and forwards each one, as it
//                     came, to every other worker process), REFILL batches when
//                     the agent is new, heartbeats, LinkBye at exit;
//   agent -> worker   SNAPSHOT batches and SnapshotDone when a worker starts
//                     (it reports READY after them), the others' DELTA
//                     batches, heartbeats with the agent's incarnation (a new
//                     one tells the workers to refill it) and every link's
//                     counts for `show peers`.
//
// conn_cur is settled per worker process: the agent keeps each process's net
// contribution per key, and when a process goes without its last updates
// (killed, or past hard_stop_after) it takes that contribution back, so the
// connections it no longer holds stop counting.
//
// The tables are saved to global.state_dir (tables.state) at every
// state_save_interval and at a clean stop, and loaded at start with what was
// left of each entry's life; without state_dir a clean stop (a binary
// upgrade) hands them to the next agent through the run directory.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/config/config.h"
#include "common/proto/peers.pb.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"
#include "peers/backlog.h"
#include "peers/cluster/cluster.h"

namespace weir::peers {

struct AgentOptions {
  // global.state_file when state_dir is set too: its server states are
  // imported once, into an empty store (the migration to state_dir).
  std::string import_state_file;
  std::string run_dir;     // the master's private directory: the socket, the hand-over file
  std::string state_path;  // global.state_dir/tables.state; empty: none
  int64_t save_interval_ms = 60000;
  // No worker process of this node ran before this agent (not a respawn, not
  // a binary upgrade): the other nodes drop what this node counted before.
  bool node_started = true;
};

class Agent {
 public:
  explicit Agent(AgentOptions opts);
  ~Agent();

  // The socket (ipc://RUN_DIR/peers.sock), accepting only processes of this
  // account. false with *error.
  bool bind(std::string* error);
  // The tables of a configuration: kept when their definition did not change,
  // rebuilt with their entries when it did, dropped when gone; and the
  // cluster's links (peers:), made again when they changed. false with *error
  // when this node cannot listen for its peers (at start, that stops the agent;
  // at a reload, it logs the error and the other nodes cannot reach this one
  // until a reload fixes it).
  bool configure(const Config& cfg, std::string* error);
  // global.state_dir and state_save_interval of a reload's configuration.
  void set_state(std::string state_path, int64_t save_interval_ms);
  // Loads the state file (or the hand-over file); a missing file is nothing,
  // an unreadable one a warning and empty tables.
  void load_state();
  // Which of these worker processes, still alive, have not refilled this
  // agent (their LinkSynced has not come).
  std::vector<int> not_refilled_by(const std::vector<int>& pids) const;
  // Writes every table to the state file (and, without one, to the hand-over
  // file when `handover`). false when it could not.
  bool save_state(bool handover, bool periodic = false);

  // One turn of the loop: waits up to timeout_ms for the workers (and for
  // `extra_fd`, the master's channel), handles what came, runs the timers.
  // true when extra_fd is readable.
  bool poll_once(int extra_fd, int64_t timeout_ms);

  static std::string endpoint_of(const std::string& run_dir) {
    return "ipc://" + run_dir + "/peers.sock";
  }
  uint64_t incarnation() const { return incarnation_; }
  size_t links() const { return links_.size(); }
  stick::Table* table(const std::string& name) const;
  Cluster* cluster() const { return cluster_.get(); }

 private:
  struct Link {
    std::string id;  // the ZeroMQ routing id
    int32_t pid = 0;
    int32_t generation = 0;
    int64_t first_ms = 0;
    int64_t last_ms = 0;
    bool connected = true;
    uint64_t received = 0, sent = 0, dropped = 0, coalesced = 0, pending = 0;
    bool resync = false;  // a batch could not be queued to it: send it a snapshot
    bool synced = false;  // its LinkSynced came: this agent has its tables
    // Its net conn_cur contribution.
    stick::sync::ConnCurLedger conn_cur;
  };

  void on_message(const std::string& id, const zmq::message_t& payload);
  void on_batch(Link& from, const proto::TableBatch& b, const zmq::message_t& payload);
  // Takes back what a process that is gone still held of conn_cur, then forgets it.
  void settle(const std::string& id, const char* why);
  bool send(Link& to, const proto::PeersMessage& m, size_t rows);
  bool send_raw(Link& to, const void* data, size_t size, size_t rows);
  // A message, as it came, to every link but `from_id`'s.
  void forward(const std::string& from_id, const void* data, size_t size, size_t rows);
  // A batch another node sent, to every worker process (`raw`: its bytes as
  // they came, or empty).
  void deliver(const proto::TableBatch& b, std::string_view raw);
  // A full resync came in: each worker is asked to answer once it has applied
  // what it was sent; the backlog waits for the answers (or kMarkWaitMs).
  void ask_marks();
  bool backlog_may_work(int64_t now) const;
  // Every table to `to`: as a SNAPSHOT (a new worker, which holds back its own
  // counts until it is in), or as a REFILL (`catch_up`: a worker that missed
  // updates, whose own counts in flight a snapshot would overwrite; the larger
  // value wins instead).
  void send_snapshot(Link& to, bool catch_up = false);
  // The migration from global.state_file (AgentOptions::import_state_file).
  void import_state_file();
  // Server states set at runtime by a worker (or, `from` null, another node):
  // kept, and sent to the other workers (and nodes).
  void on_servers(Link* from, const proto::ServerRecords& rs);
  servers::Store servers_;
  void send_heartbeats();
  void check_links();
  void timers();
  std::string state_or_handover_path(bool handover) const;

  AgentOptions opts_;
  zmq::context_t ctx_;
  zmq::socket_t router_;
  Tables tables_;
  std::map<std::string, Link> links_;
  Backlog backlog_;                  // before cluster_, which writes through it
  uint64_t backlog_releases_ = 0;    // the last Backlog::releases() seen
  uint64_t mark_ = 0;                // the last mark asked for
  std::set<std::string> marks_due_;  // the links that have not answered it
  int64_t marks_until_ = 0;
  size_t backlog_rows_ = 0;  // kept when the last full resync was in (for its log line)
  int64_t backlog_since_ = 0;
  std::unique_ptr<Cluster> cluster_;  // with peers: only
  uint64_t incarnation_ = 0;
  int64_t next_heartbeat_ms_ = 0;
  int64_t next_check_ms_ = 0;
  int64_t next_save_ms_ = 0;
};

// `weir --peers FD`: the agent's process (FD: its channel to the master).
int peers_main(int channel_fd);

}  // namespace weir::peers
