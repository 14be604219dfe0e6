// libFuzzer target: what a peers agent decodes from the other nodes of its
// cluster (NodeMessage, common/proto/peers.proto), through the cluster's state
// machine (peers/cluster/cluster.h) without sockets. The input is a sequence
// of messages, each a byte saying where it comes from (the ROUTER, from node b
// or c; or the DEALER toward b or c, as an answer), two bytes of length and
// the message, so that hellos, updates, resyncs, acks and refusals meet in any
// order. Whatever the bytes: no crash, no undefined behaviour, the tables
// stay readable (a snapshot of each carries every entry), and the server
// records that change the store turn into runtime-API commands as a worker
// would make them, one line each.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/config/config.h"
#include "common/proto/peers.pb.h"
#include "common/servers/record.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"
#include "peers/cluster/cluster.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_tables.h"

using weir::fuzz::check;
namespace stick = weir::stick;
namespace proto = weir::proto;

namespace {

weir::PeersConfig cluster_config() {
  weir::PeersConfig c;
  c.cluster = "fuzz";
  c.local = "a";
  c.local_id = stick::node_id("a");
  for (const char* n : {"a", "b", "c"}) {
    weir::PeerNode p;
    p.name = n;
    p.address = std::string("10.0.0.") + (n[0] == 'a' ? "1" : n[0] == 'b' ? "2" : "3") + ":7400";
    c.nodes.push_back(p);
  }
  return c;
}

size_t entries(stick::Table& t, const stick::Now& now) {
  size_t n = 0;
  t.walk(now, [&](stick::Table::Access&) {
    ++n;
    return true;
  });
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static zmq::context_t ctx;
  static const char* const kA[] = {"http_req_cnt", "http_req_rate(10s)", "gpt(2)", "server_key",
                                   nullptr};
  static const char* const kB[] = {"conn_cnt", "gpc_rate(2,1m)", nullptr};
  weir::peers::Tables tables;
  tables["a"] =
      std::make_shared<stick::Table>(weir::fuzz::table_def("a", stick::KeyType::kString, kA, true));
  tables["b"] =
      std::make_shared<stick::Table>(weir::fuzz::table_def("b", stick::KeyType::kIp, kB, true));
  size_t delivered = 0;
  weir::peers::Backlog backlog;
  {
    weir::peers::Cluster cluster(
        ctx, tables, backlog, 0x1234567890abcdefULL,
        [&](const proto::TableBatch& b, std::string_view raw) {
          ++delivered;
          if (raw.empty()) return;
          // The bytes handed on as they came are that batch.
          proto::TableBatch again;
          check(again.ParseFromArray(raw.data(), static_cast<int>(raw.size())),
                "a batch's bytes parse");
          check(again.table() == b.table() && again.rows_size() == b.rows_size(),
                "a batch's bytes are that batch");
        });
    weir::servers::Store servers;
    cluster.share_servers(&servers, [&](const proto::ServerRecords& changed) {
      for (const proto::ServerRecord& r : changed.records()) {
        check(servers.find(r.backend(), r.server()) != nullptr, "a changed record is kept");
        // As a worker where the server exists with other settings, and where it does not.
        weir::servers::ServerNow here;
        here.exists = true;
        here.configured = true;
        here.admin_state = "ready";
        here.weight = here.configured_weight = 1;
        here.address = here.configured_address = "10.1.1.1:80";
        for (const weir::servers::ServerNow& n : {here, weir::servers::ServerNow{}}) {
          for (const std::string& line : weir::servers::commands_for(r, n)) {
            check(line.find('\n') == std::string::npos, "a command is one line");
          }
        }
      }
    });
    cluster.adopt(cluster_config());
    size_t at = 0;
    while (at + 3 <= size) {
      const uint8_t from = data[at];
      const size_t len = static_cast<size_t>(data[at + 1]) << 8 | data[at + 2];
      at += 3;
      const std::string_view msg(reinterpret_cast<const char*>(data) + at,
                                 std::min(len, size - at));
      at += msg.size();
      const std::string node = from & 2 ? "c" : "b";
      if (from & 1) {
        cluster.receive_answer(node, (from >> 2) & 1, msg);
      } else {
        cluster.receive(node, msg, "10.0.0.9", node);
      }
      if (from & 8) cluster.flush();
    }
    google::protobuf::RepeatedPtrField<proto::NodeStats> stats;
    cluster.stats(&stats);
    check(stats.size() == 2, "the two other nodes are reported");
  }
  check(delivered <= size, "no more batches delivered than the input could hold");
  check(!backlog.held(), "the hold ends with the cluster");
  backlog.settle();  // what a resync kept parses and applies
  check(backlog.empty(), "settled");
  const stick::Now now = stick::clock_now();
  for (auto& [name, t] : tables) {
    stick::Table copy(t->def());
    stick::sync::write_all(*t, proto::TableBatch::SNAPSHOT, now,
                           [&](const proto::TableBatch& b) { stick::sync::apply(copy, b, now); });
    check(entries(*t, now) == entries(copy, now), "a snapshot carries every entry");
  }
  return 0;
}
