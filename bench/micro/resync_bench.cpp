// Micro-benchmarks of a full resync of a million-entry table, stage by stage,
// as bench/peers.sh's resync figure goes through them: the sending agent reads
// its table into REFILL batches and serialises them; the receiving agent
// parses and applies each batch and hands it on to its workers; each worker
// parses and applies it again. Items: entries (rows).

#include <benchmark/benchmark.h>

#include <google/protobuf/arena.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/proto/peers.pb.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"

namespace {

using weir::stick::Datum;
using weir::stick::Now;
using weir::stick::Table;
using weir::stick::TableDef;
namespace proto = weir::proto;
namespace sync = weir::stick::sync;

const int64_t kEntries =
    std::getenv("RESYNC_ENTRIES") ? std::atoll(std::getenv("RESYNC_ENTRIES")) : 1000000;

// bench/peers.sh's table: strings, one counter.
TableDef bench_def() {
  TableDef d;
  d.name = "st";
  d.type = weir::stick::KeyType::kString;
  d.key_size = 32;
  d.size = 2 << 20;
  d.expire_ms = 600000;
  std::string error;
  d.store.push_back(*weir::stick::parse_stored("http_req_cnt", &error));
  d.sync = true;
  return d;
}

Table& source_table() {
  static Table t(bench_def());
  static const bool filled = [] {
    const Now now = weir::stick::clock_now();
    for (int64_t i = 0; i < kEntries; ++i) {
      auto a = t.find_or_make("f" + std::to_string(i), now);
      a.data().add(Datum::kHttpReqCnt, 1 + i % 7, now);
    }
    return true;
  }();
  benchmark::DoNotOptimize(filled);
  return t;
}

// The sender: every shard read into batches, each serialised.
void BM_ResyncWrite(benchmark::State& state) {
  Table& t = source_table();
  const Now now = weir::stick::clock_now();
  for (auto _ : state) {
    size_t bytes = 0;
    sync::write_shards(t, 0, Table::kShards, proto::TableBatch::REFILL, now,
                       [&](proto::TableBatch b) { bytes += b.SerializeAsString().size(); });
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
}
BENCHMARK(BM_ResyncWrite)->Unit(benchmark::kMillisecond);

const std::vector<std::string>& wire_batches() {
  static const std::vector<std::string> batches = [] {
    std::vector<std::string> out;
    sync::write_shards(source_table(), 0, Table::kShards, proto::TableBatch::REFILL,
                       weir::stick::clock_now(),
                       [&](proto::TableBatch b) { out.push_back(b.SerializeAsString()); });
    return out;
  }();
  return batches;
}

// A receiver (the agent, then each worker): every batch parsed on an arena and
// applied to an empty table.
void BM_ResyncApply(benchmark::State& state) {
  const std::vector<std::string>& batches = wire_batches();
  for (auto _ : state) {
    auto t = std::make_unique<Table>(bench_def());
    const Now now = weir::stick::clock_now();
    for (const std::string& bytes : batches) {
      google::protobuf::Arena arena;
      auto* b = google::protobuf::Arena::CreateMessage<proto::TableBatch>(&arena);
      b->ParseFromString(bytes);
      sync::apply(*t, *b, now);
    }
    state.PauseTiming();
    t.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
}
BENCHMARK(BM_ResyncApply)->Unit(benchmark::kMillisecond);

// The receiving agent hands each batch it parsed on to its workers: serialised again.
void BM_ResyncForward(benchmark::State& state) {
  const std::vector<std::string>& batches = wire_batches();
  google::protobuf::Arena arena;
  std::vector<proto::TableBatch*> parsed;
  for (const std::string& bytes : batches) {
    parsed.push_back(google::protobuf::Arena::CreateMessage<proto::TableBatch>(&arena));
    parsed.back()->ParseFromString(bytes);
  }
  for (auto _ : state) {
    size_t n = 0;
    for (const proto::TableBatch* b : parsed) n += b->SerializeAsString().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
}
BENCHMARK(BM_ResyncForward)->Unit(benchmark::kMillisecond);

}  // namespace
