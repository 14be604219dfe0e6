// A rolling upgrade of a cluster (doc/peers-protocol.md, "Versions"): a node
// of the next version, whose messages carry fields this version does not
// know (tests/support/peers_next.proto, numbers 100 and up, and protocol 2),
// exchanges updates both ways with a real weir node of this version. The next
// node is the test itself, speaking ZeroMQ with CURVE and its own key pair
// from `weirctl peers keygen`, as any node does.

#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/base/curve_keys.h"
#include "common/stick/datum.h"
#include "tests/integration/stick_tables.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/peers_next.pb.h"
#include "tests/support/util.h"

namespace weir::test {
namespace {

using sticky::parse_table;
using sticky::TableView;

constexpr uint64_t kNextIncarnation = 0x5eed5eed5eed5eedULL;

class ClusterUpgrade : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    a_peer_ = free_tcp_port();
    a_http_ = free_tcp_port();
    n_peer_ = free_tcp_port();
    a_public_ = keygen(dir_ + "/a.key");
    n_public_ = keygen(dir_ + "/n.key");
    std::string why;
    n_secret_ = *curve::read_secret_file(dir_ + "/n.key", &why);
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }
  static std::string keygen(const std::string& path) {
    CommandResult r = weirctl({"peers", "keygen", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(r.out.find('"') + 1, 40);
  }
  std::string admin() const { return dir_ + "/admin.sock"; }
  std::string config() const {
    return "global:\n  log: [{target: stdout, format: text}]\n  runtime_api: [" + admin() +
           "]\npeers:\n  cluster: rolling\n  local: a\n  secret_key_file: " + dir_ +
           "/a.key\n  nodes:\n    a: {address: \"127.0.0.2:" + std::to_string(a_peer_) +
           "\", public_key: \"" + a_public_ +
           "\"}\n    n: {address: \"127.0.0.5:" + std::to_string(n_peer_) + "\", public_key: \"" +
           n_public_ +
           "\"}\nstick_tables:\n  st: {type: string, size: 1k, expire: 10m, store: "
           "[http_req_cnt], sync: true}\nfrontends:\n  web:\n    bind: \"127.0.0.1:" +
           std::to_string(a_http_) +
           "\"\n    default_backend: app\n    http_request:\n      - track: {table: st, key: "
           "\"req.hdr(x-key)\"}\nbackends:\n  app:\n    servers: {s1: \"" +
           origin_.address() + "\"}\n";
  }
  TableView show() { return parse_table(unix_command(admin(), "show table st")); }

  // One message on `s` within `ms`, as the next version reads it (a routing
  // id first on a ROUTER).
  static std::optional<next::NodeMessage> receive(zmq::socket_t& s, int ms, std::string* id) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t first, body;
      if (!s.recv(first, zmq::recv_flags::dontwait)) continue;
      if (first.more()) {
        if (id) *id = first.to_string();
        if (!s.recv(body, zmq::recv_flags::none)) continue;
      } else {
        body = std::move(first);
      }
      next::NodeMessage m;
      if (m.ParseFromArray(body.data(), static_cast<int>(body.size()))) return m;
    }
    return std::nullopt;
  }
  // Waits for a message of one kind, skipping the others.
  static std::optional<next::NodeMessage> receive_kind(zmq::socket_t& s,
                                                       next::NodeMessage::BodyCase kind,
                                                       std::string* id, int ms = 20000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      auto m = receive(s, 200, id);
      if (m && m->body_case() == kind) return m;
    }
    return std::nullopt;
  }
  static void send(zmq::socket_t& s, const next::NodeMessage& m, const std::string* id = nullptr) {
    if (id) s.send(zmq::buffer(*id), zmq::send_flags::sndmore);
    const std::string bytes = m.SerializeAsString();
    s.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  std::string dir_;
  uint16_t a_peer_ = 0, a_http_ = 0, n_peer_ = 0;
  std::string a_public_, n_public_, n_secret_;
  OriginServer origin_{"app"};
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(ClusterUpgrade, ANodeOfTheNextVersionExchangesUpdatesBothWays) {
  zmq::context_t ctx;
  // The next node's listening socket (no ZAP handler in this context: the
  // test lets the current node in whatever its key) and its connection to a.
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  // As a node's own ROUTER does: a's connection made again (after a hello of
  // n's) takes over its routing id from the one it replaces.
  router.set(zmq::sockopt::router_handover, 1);
  router.set(zmq::sockopt::curve_server, 1);
  router.set(zmq::sockopt::curve_secretkey, n_secret_);
  router.bind("tcp://127.0.0.5:" + std::to_string(n_peer_));
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::routing_id, "n");
  dealer.set(zmq::sockopt::curve_serverkey, a_public_);
  dealer.set(zmq::sockopt::curve_publickey, n_public_);
  dealer.set(zmq::sockopt::curve_secretkey, n_secret_);
  dealer.connect("tcp://127.0.0.2:" + std::to_string(a_peer_));

  weir_ = WeirProcess::start(config());
  ASSERT_TRUE(weir_);

  // next -> current: a hello with a field a does not know, then the (empty)
  // whole tables its welcome asks for, then an update with new fields.
  next::NodeMessage hello;
  hello.set_protocol(2);
  next::NodeHello* h = hello.mutable_hello();
  h->set_cluster("rolling");
  h->set_node("n");
  h->set_incarnation(kNextIncarnation);
  h->set_version("next");
  h->set_zone("eu-west-1");
  next::TableDefinition* d = h->add_tables();
  d->set_name("st");
  d->set_key_type(3);  // string (stick::KeyType)
  send(dealer, hello);
  auto welcome = receive_kind(dealer, next::NodeMessage::kWelcome, nullptr);
  ASSERT_TRUE(welcome) << weir_->stderr_text();
  EXPECT_EQ(welcome->welcome().node(), "a");
  EXPECT_EQ(welcome->welcome().your_incarnation(), 0u);  // a holds nothing of n yet

  next::NodeMessage resync;
  resync.set_protocol(2);
  resync.mutable_resync()->set_incarnation(kNextIncarnation);
  resync.mutable_resync()->set_upto_seq(0);
  resync.mutable_resync()->set_part(1);
  resync.mutable_resync()->set_last(true);
  send(dealer, resync);
  next::NodeMessage update;
  update.set_protocol(2);
  next::NodeUpdates* u = update.mutable_updates();
  u->set_incarnation(kNextIncarnation);
  u->set_seq(1);
  u->set_compression(7);
  next::TableBatch* b = u->add_batches();
  b->set_table("st");
  b->set_kind(next::TableBatch::DELTA);
  b->add_columns(static_cast<uint32_t>(stick::Datum::kHttpReqCnt) << 8);
  b->set_wall_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count());
  next::Row* row = b->add_rows();
  row->set_key("from-next");
  row->add_values(5);
  row->set_origin_ms(123);
  send(dealer, update);
  auto ack = receive_kind(dealer, next::NodeMessage::kAck, nullptr);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(wait_until([&] { return show().at("from-next", "http_req_cnt") == "5"; }, 20000))
      << show().text;

  // current -> next: a says hello to n, n welcomes it (with a field a does not
  // know), a sends its whole tables, then its updates. n answers every hello,
  // as a node does: a makes its connection to n again when n's own hello comes
  // (cluster.cpp, kRemakeAfterMs), so the first hellos queued here may come
  // from a connection that is gone, and a welcome sent there is lost.
  std::string id;
  std::optional<next::NodeMessage> a_hello, a_resync;
  next::NodeMessage w;
  w.set_protocol(2);
  w.mutable_welcome()->set_node("n");
  w.mutable_welcome()->set_incarnation(kNextIncarnation);
  w.mutable_welcome()->set_features("compression");
  const auto resync_until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!a_resync && std::chrono::steady_clock::now() < resync_until) {
    auto m = receive(router, 200, &id);
    if (m && m->has_hello()) {
      a_hello = m;
      send(router, w, &id);
    } else if (m && m->has_resync()) {
      a_resync = m;
    }
  }
  ASSERT_TRUE(a_hello);
  EXPECT_EQ(a_hello->hello().node(), "a");
  EXPECT_EQ(a_hello->hello().cluster(), "rolling");
  ASSERT_TRUE(a_resync);
  const uint64_t a_incarnation = a_resync->resync().incarnation();
  bool saw_from_next = false;
  for (const next::TableBatch& tb : a_resync->resync().batches()) {
    for (const next::Row& r : tb.rows()) saw_from_next |= r.key() == "from-next";
  }
  EXPECT_TRUE(saw_from_next) << "a's whole tables hold what n sent";
  next::NodeMessage a_ack;
  a_ack.set_protocol(2);
  a_ack.mutable_ack()->set_your_incarnation(a_incarnation);
  a_ack.mutable_ack()->set_applied(a_resync->resync().upto_seq());
  a_ack.mutable_ack()->set_applied_ms(1);
  send(router, a_ack, &id);

  HttpClient client(a_http_);
  auto r = client.request("GET", "/", {{"X-Key", "from-current"}});
  ASSERT_TRUE(r);
  // Until a's update comes: its heartbeats are acknowledged, and a hello (a's
  // link went down meanwhile) is welcomed with what n holds of a.
  bool saw_from_current = false;
  uint64_t applied = a_resync->resync().upto_seq();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!saw_from_current && std::chrono::steady_clock::now() < until) {
    auto m = receive(router, 200, &id);
    if (!m) continue;
    next::NodeMessage answer;
    answer.set_protocol(2);
    if (m->has_updates()) {
      applied = m->updates().seq();
      for (const next::TableBatch& tb : m->updates().batches()) {
        for (const next::Row& rr : tb.rows()) saw_from_current |= rr.key() == "from-current";
      }
    } else if (m->has_hello()) {
      answer.mutable_welcome()->set_node("n");
      answer.mutable_welcome()->set_incarnation(kNextIncarnation);
      answer.mutable_welcome()->set_your_incarnation(a_incarnation);
      answer.mutable_welcome()->set_applied(applied);
      send(router, answer, &id);
      continue;
    } else if (!m->has_heartbeat()) {
      continue;
    }
    answer.mutable_ack()->set_your_incarnation(a_incarnation);
    answer.mutable_ack()->set_applied(applied);
    send(router, answer, &id);
  }
  EXPECT_TRUE(saw_from_current) << "a's update reached the next node";
}

}  // namespace
}  // namespace weir::test
