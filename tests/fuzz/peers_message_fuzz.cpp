// libFuzzer target: what the peers agent and the worker processes decode
// (common/proto/peers.proto): a PeersMessage whose batch is applied to three
// tables of different definitions (as a worker or the agent applies another
// process's batch), and the agent's state file (peers/state_store.h). The
// first byte picks which. Whatever the bytes, no crash and no undefined
// behaviour; a state file is loaded whole or not at all; and a table written
// as a snapshot and applied to an empty table of the same definition reads
// back the same entries with the same counters.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/proto/peers.pb.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"
#include "peers/state_store.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_tables.h"

using weir::fuzz::check;
namespace stick = weir::stick;
namespace proto = weir::proto;

namespace {

weir::peers::Tables make_tables() {
  static const char* const kA[] = {"http_req_cnt", "http_req_rate(10s)", "conn_cur", "gpc(2)",
                                   "gpt(2)",       "server_key",         nullptr};
  static const char* const kB[] = {"conn_cnt", "bytes_in_rate(1s)", "gpc_rate(2,1m)", nullptr};
  static const char* const kC[] = {"conn_cur", "http_err_cnt", nullptr};
  weir::peers::Tables t;
  t["a"] = std::make_shared<stick::Table>(weir::fuzz::table_def("a", stick::KeyType::kString, kA));
  t["b"] = std::make_shared<stick::Table>(weir::fuzz::table_def("b", stick::KeyType::kIp, kB));
  t["c"] = std::make_shared<stick::Table>(weir::fuzz::table_def("c", stick::KeyType::kInteger, kC));
  return t;
}

// Every entry of `t` as `show table` would list its values.
std::map<std::string, std::string> contents(stick::Table& t, const stick::Now& now) {
  std::map<std::string, std::string> out;
  t.walk(now, [&](stick::Table::Access& a) {
    std::string v;
    const stick::EntryData d = a.data();
    for (const stick::Stored& s : t.def().store) {
      if (stick::info(s.datum).shape == stick::Shape::kRate) continue;  // decays with time
      for (uint32_t i = 0; i < s.count; ++i) {
        v += std::to_string(d.value(s.datum, i, now).value_or(-1)) + ",";
      }
    }
    out[std::string(d.key())] = v;
    return true;
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  weir::peers::Tables tables = make_tables();
  const stick::Now now{1000000, 1700000000000};
  if (data[0] & 1) {
    const weir::peers::LoadReport r = weir::peers::load_tables_from(bytes, tables, now);
    if (!r.error.empty()) {
      for (auto& [name, t] : tables) check(t->used() == 0, "a refused state file loads nothing");
    }
  } else {
    proto::PeersMessage m;
    if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return 0;
    if (!m.has_batch()) return 0;
    for (auto& [name, t] : tables) stick::sync::apply(*t, m.batch(), now);
  }
  // Whatever was applied survives a snapshot into an empty table.
  for (auto& [name, t] : tables) {
    stick::Table copy(t->def());
    stick::sync::write_all(*t, proto::TableBatch::SNAPSHOT, now,
                           [&](const proto::TableBatch& b) { stick::sync::apply(copy, b, now); });
    check(contents(*t, now) == contents(copy, now), "a snapshot carries every entry and counter");
  }
  return 0;
}
