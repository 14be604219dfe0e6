// Micro-benchmarks of a stick table on the traffic path: what one request
// costs when it tracks a key (a new entry or an existing one), counts in it,
// reads its rate and lets go, as `track` + `sc0_http_req_rate` do; with one
// thread and with two sharing the table (its shards' locks).

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "common/stick/table.h"
#include "worker/stick/trackers.h"

namespace {

using weir::stick::Datum;
using weir::stick::Now;
using weir::stick::Table;
using weir::stick::TableDef;
using weir::stick::Trackers;

Table& shared_table() {
  static Table* t = [] {
    TableDef d;
    d.name = "bench";
    d.type = weir::stick::KeyType::kString;
    d.key_size = 32;
    d.size = 1 << 20;
    d.expire_ms = 60000;
    std::string error;
    d.store.push_back(*weir::stick::parse_stored("http_req_cnt", &error));
    d.store.push_back(*weir::stick::parse_stored("http_req_rate(10s)", &error));
    return new Table(d);
  }();
  return *t;
}

// One request: track key k (100,000 distinct keys), count it, read the rate,
// answer, let go.
void BM_TrackedRequest(benchmark::State& state) {
  Table& table = shared_table();
  std::vector<std::string> keys;
  for (int i = 0; i < 100000; ++i) keys.push_back("k" + std::to_string(i));
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  const Now now = weir::stick::clock_now();
  for (auto _ : state) {
    Trackers t;
    t.track(0, table, keys[i++ % keys.size()], Trackers::Stage::kRequest, now);
    auto a = table.peek(t.slot(0).entry);
    benchmark::DoNotOptimize(a.data().value(Datum::kHttpReqRate, 0, now));
    a = Table::Access();
    t.response_answered(200, now);
    t.request_ended(100, 1024, now);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackedRequest)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
