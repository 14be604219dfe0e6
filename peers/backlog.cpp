// The agent's own writes to its tables, some of them later (backlog.h).

#include "peers/backlog.h"

#include <google/protobuf/arena.h>

#include "common/base/log.h"

namespace weir::peers {

void Backlog::apply(const std::shared_ptr<stick::Table>& t, const proto::TableBatch& b,
                    std::string_view raw) {
  const stick::Now now = stick::clock_now();
  if (!held_ && kept_.empty()) {
    stick::sync::apply(*t, b, now);
    return;
  }
  Kept k{t, raw.empty() ? b.SerializeAsString() : std::string(raw),
         static_cast<size_t>(b.rows_size()), now};
  rows_ += k.rows;
  if (held_) held_rows_ += k.rows;
  kept_.push_back(std::move(k));
}

void Backlog::apply_one(Kept& k) {
  rows_ -= k.rows;
  std::shared_ptr<stick::Table> t = k.table.lock();
  if (!t) return;
  google::protobuf::Arena arena;
  proto::TableBatch& b = *google::protobuf::Arena::CreateMessage<proto::TableBatch>(&arena);
  if (!b.ParseFromString(k.bytes)) {
    // Its bytes were parsed once already when it came: this cannot happen.
    log::error("peers: a kept batch of table %s no longer parses; dropped", t->name().c_str());
    return;
  }
  stick::sync::apply(*t, b, k.at);
}

bool Backlog::work(int64_t budget_ms) {
  const int64_t until = stick::clock_now().mono_ms + budget_ms;
  while (!kept_.empty()) {
    apply_one(kept_.front());
    kept_.pop_front();
    if (budget_ms >= 0 && stick::clock_now().mono_ms >= until) break;
  }
  return kept_.empty();
}

void Backlog::settle() {
  work(-1);
}

}  // namespace weir::peers
