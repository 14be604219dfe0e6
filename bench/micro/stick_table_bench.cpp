// Micro-benchmarks of a stick table on the traffic path: what one request
// costs when it tracks a key (a new entry or an existing one), counts in it,
// reads its rate and lets go, as `track` + `sc0_http_req_rate` do; with one
// thread and with two sharing the table (its shards' locks).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <initializer_list>
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

// A string table of `size` entries storing `stored`.
TableDef string_table(const char* name, uint64_t size, int64_t expire_ms,
                      std::initializer_list<const char*> stored) {
  TableDef d;
  d.name = name;
  d.type = weir::stick::KeyType::kString;
  d.key_size = 32;
  d.size = size;
  d.expire_ms = expire_ms;
  std::string error;
  for (const char* s : stored) d.store.push_back(*weir::stick::parse_stored(s, &error));
  return d;
}

Table& shared_table() {
  static Table t(string_table("bench", 1 << 20, 60000, {"http_req_cnt", "http_req_rate(10s)"}));
  return t;
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

// Reading every entry of a table of 1,000,000, as a full resync to another
// node, a snapshot for a new worker or the state file do (items: entries).
const int64_t kMillion =
    std::getenv("WALK_ENTRIES") ? std::atoll(std::getenv("WALK_ENTRIES")) : 1000000;

Table& million_table() {
  static Table t(string_table("walk", 2 << 20, 600000, {"http_req_cnt"}));
  static const bool filled = [] {
    const Now now = weir::stick::clock_now();
    for (int64_t i = 0; i < kMillion; ++i) {
      auto a = t.find_or_make("key-" + std::to_string(i * 7919 % 1000003), now);
      a.data().add(Datum::kHttpReqCnt, 1, now);
    }
    return true;
  }();
  benchmark::DoNotOptimize(filled);
  return t;
}

void BM_WalkMillionEntries(benchmark::State& state) {
  Table& t = million_table();
  const Now now = weir::stick::clock_now();
  for (auto _ : state) {
    int64_t sum = 0;
    t.walk(now, [&](Table::Access& a) {
      sum += *a.data().value(Datum::kHttpReqCnt, 0, now);
      return true;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kMillion);
}
BENCHMARK(BM_WalkMillionEntries)->Unit(benchmark::kMillisecond);

}  // namespace
