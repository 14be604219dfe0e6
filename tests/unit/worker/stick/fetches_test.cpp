// The stick-table fetches and the table_ converter (worker/stick/fetches.cpp,
// common/cond/stick_words.cpp) against a model: a configuration with tables
// that store every datum, two connections whose Trackers track entries and
// count requests, statuses, bytes and gpc / gpt actions, and every word with
// every prefix (sc0_, sc1_, sc2_, sc_(N), src_, table_) read as a sample and
// compared with what the model says. Then the errors of their arguments.

#include "worker/stick/trackers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/address.h"
#include "common/cond/stick_words.h"
#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"
#include "tests/unit/common/stick/rate_model.h"
#include "worker/rules/rules.h"

namespace weir {
namespace {

using cond::stick_words::Word;
using stick::Datum;
using stick::Now;
using stick::Table;
using stick::Trackers;
using Stage = Trackers::Stage;
using stick_test::model_rate;

// Every datum in `t` (gpc and gpt with several elements), fewer in `other`
// (an ip table too: sc0_W(other) looks the key up there), and a string table.
constexpr std::string_view kTables = R"yaml(stick_tables:
  t:
    type: ip
    size: 100
    store:
      - server_key
      - gpt(2)
      - gpc(3)
      - gpc_rate(3,10s)
      - conn_cnt
      - conn_cur
      - conn_rate(10s)
      - sess_cnt
      - sess_rate(10s)
      - http_req_cnt
      - http_req_rate(10s)
      - http_err_cnt
      - http_err_rate(10s)
      - http_fail_cnt
      - http_fail_rate(10s)
      - bytes_in_cnt
      - bytes_out_cnt
      - bytes_in_rate(10s)
      - bytes_out_rate(10s)
  other:
    type: ip
    size: 10
    store: [http_req_cnt, gpc0, "http_req_rate(1m)"]
  keys:
    type: string
    size: 10
    store: [http_req_cnt, "gpc(2)", conn_cur]
)yaml";

constexpr int64_t kPeriod = 10'000;  // the periods of `t`

// ---------------------------------------------------------------- the model

struct ModelEntry {
  std::map<std::pair<Datum, uint32_t>, int64_t> values;  // counters, tags, the server key
  std::map<std::pair<Datum, uint32_t>, std::vector<std::pair<int64_t, uint64_t>>> events;
  int trackers = 0;
};

// The counting of worker/stick/trackers.h, written again from its comment,
// over maps of entries.
class Model {
 public:
  struct Slot {
    Table* table = nullptr;
    std::string key;
    bool request = false;
    bool session_pending = false;
  };
  struct Conn {
    Slot slot[3];
  };

  std::map<const Table*, std::map<std::string, ModelEntry>> tables;

  const ModelEntry* find(const Table& t, const std::string& key) const {
    auto it = tables.find(&t);
    if (it == tables.end()) return nullptr;
    auto e = it->second.find(key);
    return e == it->second.end() ? nullptr : &e->second;
  }
  ModelEntry& entry(const Table& t, const std::string& key) { return tables[&t][key]; }

  void add(const Slot& s, Datum d, int64_t n, const Now& now, uint32_t i = 0) {
    if (!s.table->stores(d) || i >= s.table->layout().slot[static_cast<int>(d)].count) return;
    ModelEntry& e = entry(*s.table, s.key);
    if (stick::info(d).shape == stick::Shape::kRate) {
      e.events[{d, i}].emplace_back(now.wall_ms, n > 0 ? n : 0);
    } else {
      e.values[{d, i}] += n;
    }
  }
  void set(const Slot& s, Datum d, uint32_t i, int64_t v) {
    if (s.table->stores(d)) entry(*s.table, s.key).values[{d, i}] = v;
  }

  bool track(Conn& c, int sc, Table& t, const std::string& key, Stage stage, const Now& now) {
    Slot& s = c.slot[sc];
    if (s.table) return false;
    s = {&t, key, stage == Stage::kRequest, stage == Stage::kConnection};
    ++entry(t, key).trackers;
    add(s, Datum::kConnCnt, 1, now);
    add(s, Datum::kConnRate, 1, now);
    add(s, Datum::kConnCur, 1, now);
    if (stage != Stage::kConnection) {
      add(s, Datum::kSessCnt, 1, now);
      add(s, Datum::kSessRate, 1, now);
    }
    if (stage == Stage::kRequest) {
      add(s, Datum::kHttpReqCnt, 1, now);
      add(s, Datum::kHttpReqRate, 1, now);
    }
    return true;
  }
  void session_accepted(Conn& c, const Now& now) {
    for (Slot& s : c.slot) {
      if (!s.table || !s.session_pending) continue;
      s.session_pending = false;
      add(s, Datum::kSessCnt, 1, now);
      add(s, Datum::kSessRate, 1, now);
    }
  }
  void request_started(Conn& c, const Now& now) {
    for (Slot& s : c.slot) {
      if (!s.table) continue;
      add(s, Datum::kHttpReqCnt, 1, now);
      add(s, Datum::kHttpReqRate, 1, now);
    }
  }
  void bytes(Conn& c, int64_t in, int64_t out, const Now& now) {
    for (Slot& s : c.slot) {
      if (!s.table) continue;
      add(s, Datum::kBytesInCnt, in, now);
      add(s, Datum::kBytesInRate, in, now);
      add(s, Datum::kBytesOutCnt, out, now);
      add(s, Datum::kBytesOutRate, out, now);
    }
  }
  void request_ended(Conn& c, int status, int64_t in, int64_t out, const Now& now) {
    // Errors: 4xx but 401 and 407; failures: 5xx but 501 and 505.
    const bool error = status / 100 == 4 && status != 401 && status != 407;
    const bool failure = status / 100 == 5 && status != 501 && status != 505;
    for (Slot& s : c.slot) {
      if (!s.table) continue;
      if (error) {
        add(s, Datum::kHttpErrCnt, 1, now);
        add(s, Datum::kHttpErrRate, 1, now);
      }
      if (failure) {
        add(s, Datum::kHttpFailCnt, 1, now);
        add(s, Datum::kHttpFailRate, 1, now);
      }
    }
    bytes(c, in, out, now);
    for (Slot& s : c.slot)
      if (s.table && s.request) release(s, now);
  }
  void release(Slot& s, const Now& now) {
    add(s, Datum::kConnCur, -1, now);
    --entry(*s.table, s.key).trackers;
    s = Slot{};
  }
  void release_all(Conn& c, const Now& now) {
    for (Slot& s : c.slot)
      if (s.table) release(s, now);
  }
  void inc_gpc(Conn& c, int sc, uint32_t i, const Now& now) {
    if (!c.slot[sc].table) return;
    add(c.slot[sc], Datum::kGpc, 1, now, i);
    add(c.slot[sc], Datum::kGpcRate, 1, now, i);
  }
  void clear_gpc(Conn& c, int sc, uint32_t i) {
    if (c.slot[sc].table) set(c.slot[sc], Datum::kGpc, i, 0);
  }
  void set_gpt(Conn& c, int sc, uint32_t i, int64_t v) {
    if (c.slot[sc].table) set(c.slot[sc], Datum::kGpt, i, static_cast<uint32_t>(v));
  }
};

// What a fetch should give: nothing, a text, or a number within [lo, hi]
// (a rate moves between the instants before and after the fetch).
struct Expected {
  bool has = false;
  std::optional<std::string> text;
  int64_t lo = 0, hi = 0;
};

Expected number(int64_t lo, int64_t hi) {
  Expected e;
  e.has = true;
  e.lo = std::min(lo, hi);
  e.hi = std::max(lo, hi);
  return e;
}

// `w` (element i) of an entry of table t, or of a missing entry (e null).
Expected model_read(const Word& w, uint32_t i, const Table& t, const ModelEntry* e,
                    const Now& before, const Now& after) {
  switch (w.read) {
    case Word::Read::kTracked:
      return number(1, 1);
    case Word::Read::kTrackers:
      return number(e ? e->trackers : 0, e ? e->trackers : 0);
    case Word::Read::kServerName: {
      if (!e || !t.stores(w.datum)) return {};
      auto it = e->values.find({w.datum, 0});
      if (it == e->values.end() || it->second == 0) return {};
      Expected x;
      x.has = true;
      x.text = stick::name_of(static_cast<uint32_t>(it->second));
      return x;
    }
    case Word::Read::kKbytes:
    case Word::Read::kValue:
      break;
  }
  if (!t.stores(w.datum)) return {};
  if (!e) return number(0, 0);
  if (i >= t.layout().slot[static_cast<int>(w.datum)].count) return {};
  const int64_t div = w.read == Word::Read::kKbytes ? 1024 : 1;
  if (stick::info(w.datum).shape == stick::Shape::kRate) {
    auto it = e->events.find({w.datum, i});
    if (it == e->events.end()) return number(0, 0);
    const int64_t period = t.layout().slot[static_cast<int>(w.datum)].period_ms;
    return number(static_cast<int64_t>(model_rate(it->second, before.wall_ms, period)) / div,
                  static_cast<int64_t>(model_rate(it->second, after.wall_ms, period)) / div);
  }
  auto it = e->values.find({w.datum, i});
  const int64_t v = it == e->values.end() ? 0 : it->second / div;
  return number(v, v);
}

// ---------------------------------------------------------------- the fixture

class StickFetches : public testing::Test {
 protected:
  void SetUp() override {
    loaded_ =
        load_config_text(std::string(kTables) + std::string(config_test::kMinimal), "test.yaml");
    ASSERT_TRUE(loaded_.config) << (loaded_.errors.empty() ? "" : loaded_.errors[0].to_string());
    for (const auto& table : loaded_.config->stick_tables)
      files_.stick_tables[table->name()] = table;
    t_ = files_.stick_tables.at("t").get();
    other_ = files_.stick_tables.at("other").get();
    keys_ = files_.stick_tables.at("keys").get();
    bool port = false;
    std::string error;
    client_ = *parse_numeric_address("192.0.2.7:40000", &port, &error);
    // The head views its text: parsed from the fixture's own copy.
    req_text_ = "GET /p HTTP/1.1\r\nHost: a\r\nX-Key: alice\r\n\r\n";
    size_t scan = 0;
    ASSERT_EQ(
        http::parse_request(req_text_.data(), req_text_.size(), req_text_.size() + 1, &scan, &req_),
        http::ParseStatus::kComplete);
  }

  std::string ip_key(const Table& t, std::string_view text) {
    std::string k;
    EXPECT_TRUE(stick::key_from_text(t.def(), text, &k)) << text;
    return k;
  }

  // The sample `text` over a connection whose trackers are *sc.
  std::optional<std::string> eval(const std::string& text, std::unique_ptr<Trackers>* sc) {
    cond::ParseError err;
    std::optional<cond::SampleExpr> e = cond::parse_sample(text, files_, &err);
    EXPECT_TRUE(e) << text << ": " << err.message;
    if (!e) return std::nullopt;
    SampleSource s;
    s.src = &client_;
    s.req = &req_;
    s.sc = sc;
    return e->evaluate(s);
  }

  std::string parse_error(const std::string& text) {
    cond::ParseError err;
    EXPECT_FALSE(cond::parse_sample(text, files_, &err)) << text;
    return err.message;
  }

  // Evaluates `text` and compares with what `expect` gives for the instants
  // around the evaluation.
  template <typename Expect>
  void check(const std::string& text, std::unique_ptr<Trackers>* sc, Expect&& expect) {
    const Now before = stick::clock_now();
    const std::optional<std::string> got = eval(text, sc);
    const Now after = stick::clock_now();
    const Expected want = expect(before, after);
    ++checked_;
    if (!want.has) {
      EXPECT_FALSE(got) << text << " gave " << *got;
      return;
    }
    ASSERT_TRUE(got) << text << " gave nothing";
    if (want.text) {
      EXPECT_EQ(*got, *want.text) << text;
      return;
    }
    const int64_t v = std::stoll(*got);
    EXPECT_TRUE(v >= want.lo && v <= want.hi)
        << text << " gave " << v << ", the model " << want.lo << ".." << want.hi;
  }

  LoadResult loaded_;
  cond::FileCache files_;
  Table* t_ = nullptr;
  Table* other_ = nullptr;
  Table* keys_ = nullptr;
  SockAddr client_;
  std::string req_text_;
  http::MessageHead req_;
  int checked_ = 0;
};

// "sc0_", "sc_" ...: the fetch's name and arguments for word w.
std::string fetch_text(const std::string& prefix, const Word& w, uint32_t idx, int sc,
                       const std::string& table) {
  std::vector<std::string> args;
  if (w.indexed) args.push_back(std::to_string(idx));
  if (prefix == "sc_") args.push_back(std::to_string(sc));
  if (!table.empty()) args.push_back(table);
  std::string out = prefix + std::string(w.name);
  if (args.empty()) return out;
  out += "(";
  for (size_t i = 0; i < args.size(); ++i) out += (i ? "," : "") + args[i];
  return out + ")";
}

// The elements of w a table stores (1 for words that are not indexed).
uint32_t elements(const Word& w, const Table& t) {
  if (!w.indexed) return 1;
  return t.layout().slot[static_cast<int>(w.datum)].count;
}

// A table named in a fetch must store the element the word reads (gpc1: 1).
bool has_element(const Word& w, uint32_t idx, const Table& t) {
  return w.read == Word::Read::kTrackers || idx < t.layout().slot[static_cast<int>(w.datum)].count;
}

TEST_F(StickFetches, EveryWordWithEveryPrefixAgreesWithTheModel) {
  Model m;
  Model::Conn ma, mb;
  auto a = std::make_unique<Trackers>();
  auto b = std::make_unique<Trackers>();
  const std::string client = ip_key(*t_, "192.0.2.7");
  const std::string peer = ip_key(*t_, "198.51.100.1");
  const std::string alice = "alice";

  // A period ago (the previous period of every 10 s rate when the fetches run).
  Now then = stick::clock_now();
  then.wall_ms -= kPeriod;
  then.mono_ms -= kPeriod;
  // Connection a: sc0 on its address from the connection rules, sc1 on another
  // address of `other` from the content rules, sc2 on a header key for one request.
  ASSERT_TRUE(a->track(0, *t_, client, Stage::kConnection, then));
  m.track(ma, 0, *t_, client, Stage::kConnection, then);
  a->session_accepted(then);
  m.session_accepted(ma, then);
  ASSERT_TRUE(a->track(1, *other_, peer, Stage::kContent, then));
  m.track(ma, 1, *other_, peer, Stage::kContent, then);
  EXPECT_FALSE(a->track(1, *t_, peer, Stage::kContent, then));  // counter 1 tracks already
  a->request_started(then);
  m.request_started(ma, then);
  ASSERT_TRUE(a->track(2, *keys_, alice, Stage::kRequest, then));
  m.track(ma, 2, *keys_, alice, Stage::kRequest, then);
  a->inc_gpc(0, 0, then);
  m.inc_gpc(ma, 0, 0, then);
  a->inc_gpc(0, 2, then);
  m.inc_gpc(ma, 0, 2, then);
  a->set_gpt(0, 1, 77, then);
  m.set_gpt(ma, 0, 1, 77);
  a->inc_gpc(1, 0, then);
  m.inc_gpc(ma, 1, 0, then);
  a->inc_gpc(2, 1, then);
  m.inc_gpc(ma, 2, 1, then);
  a->response_answered(404, then);
  a->request_ended(300, 5000, then);
  m.request_ended(ma, 404, 300, 5000, then);
  EXPECT_FALSE(a->tracked(2));  // the request's track ended with it
  // Connection b: sc0 on `peer` in `t`, its session never accepted.
  ASSERT_TRUE(b->track(0, *t_, peer, Stage::kConnection, then));
  m.track(mb, 0, *t_, peer, Stage::kConnection, then);

  // Now: a request per status on a (the 429 one tracked by its header again),
  // b tracks a's address too, bytes flow, gpc and gpt change.
  const Now now = stick::clock_now();
  int64_t in = 100;
  for (int status : {200, 401, 404, 429, 500, 501, 503, 407, 505, 0}) {
    a->request_started(now);
    m.request_started(ma, now);
    if (status == 429) {
      ASSERT_TRUE(a->track(2, *keys_, alice, Stage::kRequest, now));
      m.track(ma, 2, *keys_, alice, Stage::kRequest, now);
      a->inc_gpc(2, 0, now);
      m.inc_gpc(ma, 2, 0, now);
    }
    a->response_answered(status, now);
    a->request_ended(in, 3 * in, now);
    m.request_ended(ma, status, in, 3 * in, now);
    in += 1000;
  }
  ASSERT_TRUE(b->track(1, *t_, client, Stage::kContent, now));
  m.track(mb, 1, *t_, client, Stage::kContent, now);
  a->add_bytes(2048, 1 << 20, now);
  m.bytes(ma, 2048, 1 << 20, now);
  a->add_bytes(0, 0, now);
  // sync_bytes counts what the totals grew by, at most once a second.
  a->sync_bytes(5000, 7000, now, true);
  m.bytes(ma, 5000, 7000, now);
  a->sync_bytes(6000, 9000, now, false);  // within the second: not yet
  a->sync_bytes(6500, 9100, now, true);
  m.bytes(ma, 1500, 2100, now);
  for (int i = 0; i < 3; ++i) {
    a->inc_gpc(0, 1, now);
    m.inc_gpc(ma, 0, 1, now);
  }
  a->clear_gpc(0, 2, now);
  m.clear_gpc(ma, 0, 2);
  a->set_gpt(0, 0, -5, now);  // a tag is 32 bits without sign
  m.set_gpt(ma, 0, 0, -5);
  a->inc_gpc(0, 7, now);  // past the table's gpc(3): nothing
  // No action sets server_key yet (the persistence issue will): set it as
  // `set table` does.
  t_->find_or_make(client, now).data().set(Datum::kServerKey, 0, stick::name_id("srv-b"), now);
  m.set({t_, client}, Datum::kServerKey, 0, stick::name_id("srv-b"));
  b->session_accepted(now);
  m.session_accepted(mb, now);

  const std::vector<std::pair<std::string, const Table*>> tables = {
      {"t", t_}, {"other", other_}, {"keys", keys_}};
  const auto slot_of = [&](const Model::Conn& c, int sc) { return c.slot[sc]; };
  // The tracked counters of connection a (sc0 on t, sc1 on other, sc2 none).
  for (const Word& w : cond::stick_words::words()) {
    for (int sc = 0; sc < 3; ++sc) {
      const Model::Slot s = slot_of(ma, sc);
      for (const std::string& prefix : {"sc" + std::to_string(sc) + "_", std::string("sc_")}) {
        if (w.read == Word::Read::kTracked) {
          check(fetch_text(prefix, w, 0, sc, ""), &a,
                [&](const Now&, const Now&) { return number(s.table ? 1 : 0, s.table ? 1 : 0); });
          continue;
        }
        // The tracked entry's own table: unnamed, and named.
        std::vector<std::string> names = {""};
        for (const auto& [name, table] : tables) {
          if (table->stores(w.datum) || w.read == Word::Read::kTrackers) names.push_back(name);
        }
        for (const std::string& name : names) {
          const Table* named = name.empty() ? nullptr : files_.stick_tables.at(name).get();
          const Table* reads = named ? named : s.table;
          const uint32_t n = elements(w, named ? *named : *t_);
          for (uint32_t i = 0; i < n; ++i) {
            const uint32_t idx = w.indexed ? i : w.index;
            if (named && !has_element(w, idx, *named)) continue;  // an error (see below)
            check(fetch_text(prefix, w, i, sc, name), &a,
                  [&](const Now& before, const Now& after) -> Expected {
                    if (!s.table) return {};  // tracks nothing: no value
                    if (reads->def().type != s.table->def().type) return {};
                    return model_read(w, idx, *reads, m.find(*reads, s.key), before, after);
                  });
          }
        }
      }
    }
  }
  // Connection b's sc1 tracks a's address in t, as a's sc0 does: the same
  // entry, now with two trackers.
  check("sc1_trackers", &b, [&](const Now&, const Now&) { return number(2, 2); });
  check("sc_conn_cur(1)", &b, [&](const Now&, const Now&) { return number(2, 2); });
  check("sc0_sess_cnt", &b, [&](const Now&, const Now&) { return number(1, 1); });
  // src_: the client's address looked up, in every table (no value in none).
  // table_: any sample looked up; a missing key reads 0.
  for (const Word& w : cond::stick_words::words()) {
    if (w.read == Word::Read::kTracked) continue;
    for (const auto& [name, table] : tables) {
      if (!table->stores(w.datum) && w.read != Word::Read::kTrackers) continue;
      for (uint32_t i = 0; i < elements(w, *table); ++i) {
        const uint32_t idx = w.indexed ? i : w.index;
        if (!has_element(w, idx, *table)) continue;
        const Table& tb = *table;
        std::string key;
        ASSERT_TRUE(stick::key_from_text(tb.def(), "192.0.2.7", &key));
        const auto from_model = [&, key](const Now& before, const Now& after) {
          return model_read(w, idx, tb, m.find(tb, key), before, after);
        };
        check(fetch_text("src_", w, i, 0, name), &a, from_model);
        check("src," + fetch_text("table_", w, i, 0, name), &a, from_model);
        check("src," + fetch_text("table_", w, i, 0, name), nullptr, from_model);
        check("hdr(x-key)," + fetch_text("table_", w, i, 0, name), nullptr,
              [&](const Now& before, const Now& after) -> Expected {
                std::string k;
                if (!stick::key_from_text(tb.def(), "alice", &k)) return {};  // no key
                return model_read(w, idx, tb, m.find(tb, k), before, after);
              });
      }
    }
  }
  EXPECT_GT(checked_, 800);

  // The values themselves, for the record (the model could be wrong too).
  EXPECT_EQ(eval("sc0_http_req_cnt", &a), "11");  // one request then, ten now
  EXPECT_EQ(eval("sc0_http_err_cnt", &a), "3");   // 404 then; 404 and 429 now
  EXPECT_EQ(eval("sc0_http_fail_cnt", &a), "2");  // 500, 503 (not 501, 505)
  EXPECT_EQ(eval("sc0_sess_cnt", &a), "2");       // a's accepted session, b's content track
  EXPECT_EQ(eval("sc0_conn_cur", &a), "2");       // a's sc0 and b's sc1
  EXPECT_EQ(eval("sc0_conn_cnt", &a), "2");
  EXPECT_EQ(eval("sc0_get_gpc(1)", &a), "3");
  EXPECT_EQ(eval("sc0_gpc0", &a), "1");
  EXPECT_EQ(eval("sc0_gpc(2)", &a), "0");  // cleared
  EXPECT_EQ(eval("sc0_gpt(1)", &a), "77");
  EXPECT_EQ(eval("sc0_gpt0", &a), "4294967291");
  EXPECT_EQ(eval("sc0_server_key", &a), "srv-b");
  // 5000 then; 3 * (100 + 1100 + ... + 9100) now; 1 MiB; 7000 + 2100 synced.
  EXPECT_EQ(eval("sc0_kbytes_out", &a), std::to_string((5000 + 138'000 + (1 << 20) + 9100) / 1024));
  EXPECT_EQ(eval("sc0_bytes_in_cnt", &a), std::to_string(300 + 46'000 + 2048 + 6500));
  EXPECT_EQ(eval("sc1_http_req_cnt", &a), "11");
  EXPECT_EQ(eval("sc1_conn_cnt", &a), std::nullopt);  // `other` does not store it
  EXPECT_EQ(eval("sc2_http_req_cnt", &a), std::nullopt);
  EXPECT_EQ(eval("sc2_tracked", &a), "0");
  EXPECT_EQ(eval("sc0_http_req_cnt(other)", &a), "0");  // not in other: 0
  EXPECT_EQ(eval("sc1_http_req_cnt(t)", &a), "0");      // `peer` is in t: b's sc0, no request
  EXPECT_EQ(eval("sc1_conn_cnt(t)", &a), "1");
  EXPECT_EQ(eval("sc0_http_req_cnt(keys)", &a), std::nullopt);  // a string table
  EXPECT_EQ(eval("hdr(x-key),table_http_req_cnt(keys)", nullptr), "2");
  EXPECT_EQ(eval("hdr(x-key),table_conn_cur(keys)", nullptr), "0");
  EXPECT_EQ(eval("src,table_server_key(t)", nullptr), "srv-b");
  EXPECT_EQ(eval("src_trackers(t)", nullptr), "2");

  // The end of both connections: conn_cur back to 0, entries still there.
  a.reset();
  b.reset();
  EXPECT_EQ(eval("src_conn_cur(t)", nullptr), "0");
  EXPECT_EQ(eval("src_trackers(t)", nullptr), "0");
  EXPECT_EQ(eval("src_conn_cnt(t)", nullptr), "2");
  EXPECT_EQ(t_->find(peer, stick::clock_now()).data().value(Datum::kConnCur, 0, now), 0);
  EXPECT_EQ(eval("sc0_conn_cnt", &a), std::nullopt);  // no trackers at all
  EXPECT_EQ(eval("sc0_tracked", &a), "0");
  EXPECT_EQ(eval("sc0_tracked", nullptr), "0");  // no client connection (health checks)
  EXPECT_EQ(eval("sc0_conn_cnt", nullptr), std::nullopt);
}

TEST_F(StickFetches, MissingKeysReadZeroAndTableCountsAreTheEntries) {
  // Nothing tracked, nothing stored: src_ and table_ give 0, server_key nothing.
  auto none = std::make_unique<Trackers>();
  EXPECT_EQ(eval("src_http_req_rate(t)", &none), "0");
  EXPECT_EQ(eval("src_get_gpc(2,t)", &none), "0");
  EXPECT_EQ(eval("src_kbytes_in(t)", &none), "0");
  EXPECT_EQ(eval("src_server_key(t)", &none), std::nullopt);
  EXPECT_EQ(eval("src_trackers(other)", &none), "0");
  EXPECT_EQ(eval("hdr(x-key),table_gpc(1,keys)", &none), "0");
  EXPECT_EQ(eval("hdr(nope),table_gpc(1,keys)", &none), std::nullopt);       // no key at all
  EXPECT_EQ(eval("hdr(x-key),table_http_req_cnt(t)", &none), std::nullopt);  // not an address
  EXPECT_EQ(eval("sc0_http_req_cnt", &none), std::nullopt);
  EXPECT_EQ(eval("sc_tracked(2)", &none), "0");
  EXPECT_EQ(t_->used(), 0u);  // looking up made nothing
  EXPECT_EQ(eval("table_cnt(t)", nullptr), "0");
  EXPECT_EQ(eval("table_avl(t)", nullptr), "100");
  // Tracking makes entries: table_cnt counts them, table_avl what is left.
  const Now now = stick::clock_now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        none->track(i, *t_, ip_key(*t_, "10.0.0." + std::to_string(i)), Stage::kConnection, now));
  }
  ASSERT_TRUE(t_->find_or_make(ip_key(*t_, "10.0.1.1"), now));
  EXPECT_EQ(eval("table_cnt(t)", nullptr), "4");
  EXPECT_EQ(eval("table_avl(t)", nullptr), "96");
  EXPECT_EQ(eval("table_cnt(other)", nullptr), "0");
  EXPECT_EQ(eval("table_avl(other)", nullptr), "10");
  EXPECT_EQ(eval("sc2_conn_cur", &none), "1");
  EXPECT_EQ(eval("sc_conn_cnt(1)", &none), "1");
  // kbytes are whole units of 1024 bytes, rounded down.
  none->add_bytes(1023, 1024 * 5 + 1, now);
  EXPECT_EQ(eval("sc0_kbytes_in", &none), "0");
  EXPECT_EQ(eval("sc0_kbytes_out", &none), "5");
  EXPECT_EQ(eval("sc0_bytes_in_cnt", &none), "1023");
}

TEST_F(StickFetches, AnIpv4ClientIsFoundInAnIpv6Table) {
  const LoadResult r =
      load_config_text("stick_tables:\n  v6: {type: ipv6, size: 10, store: [http_req_cnt]}\n" +
                           std::string(config_test::kMinimal),
                       "v6.yaml");
  ASSERT_TRUE(r.config);
  cond::FileCache files;
  Table& v6 = *r.config->stick_tables[0];
  files.stick_tables["v6"] = r.config->stick_tables[0];
  std::string key;
  ASSERT_TRUE(stick::key_from_text(v6.def(), "::ffff:192.0.2.7", &key));
  const Now now = stick::clock_now();
  v6.find_or_make(key, now).data().add(Datum::kHttpReqCnt, 5, now);
  cond::ParseError err;
  auto src = cond::parse_sample("src_http_req_cnt", files, &err);  // the only table
  ASSERT_TRUE(src) << err.message;
  auto conv = cond::parse_sample("src,table_http_req_cnt(v6)", files, &err);
  ASSERT_TRUE(conv) << err.message;
  SampleSource s;
  s.src = &client_;
  EXPECT_EQ(src->evaluate(s), "5");
  EXPECT_EQ(conv->evaluate(s), "5");
  bool port = false;
  std::string error;
  const SockAddr v6client = *parse_numeric_address("[2001:db8::7]:40000", &port, &error);
  s.src = &v6client;
  EXPECT_EQ(src->evaluate(s), "0");
  v6.find_or_make(ip_key(v6, "2001:db8::7"), now).data().add(Datum::kHttpReqCnt, 2, now);
  EXPECT_EQ(src->evaluate(s), "2");
  // An IPv6 client has no key in an ip table: no value (an IPv4 one reads 0).
  EXPECT_EQ(eval("src_http_req_cnt(t)", nullptr), "0");
  cond::ParseError err2;
  auto in_t = cond::parse_sample("src_http_req_cnt(t)", files_, &err2);
  ASSERT_TRUE(in_t) << err2.message;
  EXPECT_EQ(in_t->evaluate(s), std::nullopt);
}

// ---------------------------------------------------------------- errors

TEST_F(StickFetches, BadArgumentsHaveTheirOwnMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sc0_conn_cur(nope)",
       "sc0_conn_cur: no stick table named 'nope' (known: keys, other, t) (written "
       "sc0_conn_cur([TABLE]))"},
      {"src,table_conn_cur(nope)",
       "table_conn_cur: no stick table named 'nope' (known: keys, other, t) (written "
       "table_conn_cur(TABLE))"},
      {"src,table_conn_cur",
       "table_conn_cur: the table is missing (written table_conn_cur(TABLE))"},
      {"src_conn_cur",
       "src_conn_cur: name the table: the configuration has 3 (written src_conn_cur([TABLE]))"},
      {"sc0_conn_cnt(other)",
       "sc0_conn_cnt: table 'other' does not store conn_cnt (written sc0_conn_cnt([TABLE]))"},
      {"src_sess_rate(keys)",
       "src_sess_rate: table 'keys' does not store sess_rate (written src_sess_rate([TABLE]))"},
      {"sc0_gpc1(other)",
       "sc0_gpc1: table 'other' stores 1 gpc element(s), indexed from 0 (written "
       "sc0_gpc1([TABLE]))"},
      {"src_get_gpc(3,t)",
       "src_get_gpc: table 't' stores 3 gpc element(s), indexed from 0 (written "
       "src_get_gpc(IDX,[TABLE]))"},
      {"sc_get_gpt(2,0,t)",
       "sc_get_gpt: table 't' stores 2 gpt element(s), indexed from 0 (written "
       "sc_get_gpt(IDX,N,[TABLE]))"},
      {"sc0_gpc(100)",
       "sc0_gpc: the index must be 0..99, not '100' (written sc0_gpc(IDX,[TABLE]))"},
      {"sc0_gpc", "sc0_gpc: the element's index is missing (written sc0_gpc(IDX,[TABLE]))"},
      {"sc0_gpc(x)", "sc0_gpc: the index must be 0..99, not 'x' (written sc0_gpc(IDX,[TABLE]))"},
      {"sc_conn_cur",
       "sc_conn_cur: the tracked counter's number is missing (written sc_conn_cur(N,[TABLE]))"},
      {"sc_conn_cur(3)",
       "sc_conn_cur: the tracked counter is 0, 1 or 2, not '3' (written sc_conn_cur(N,[TABLE]))"},
      {"sc_conn_cur(t)",
       "sc_conn_cur: the tracked counter is 0, 1 or 2, not 't' (written sc_conn_cur(N,[TABLE]))"},
      {"sc_get_gpc(0)",
       "sc_get_gpc: the tracked counter's number is missing (written "
       "sc_get_gpc(IDX,N,[TABLE]))"},
      {"sc_tracked", "sc_tracked: the tracked counter's number is missing (written sc_tracked(N))"},
      {"sc_tracked(1,t)", "sc_tracked: too many arguments (written sc_tracked(N))"},
      {"sc0_tracked(t)", "sc0_tracked: too many arguments (written sc0_tracked)"},
      {"sc0_conn_cur(t,t)", "sc0_conn_cur: too many arguments (written sc0_conn_cur([TABLE]))"},
      {"table_cnt", "table_cnt needs a table: table_cnt(TABLE)"},
      {"table_avl(t,t)", "table_avl needs a table: table_avl(TABLE)"},
      {"table_cnt(nope)", "table_cnt: no stick table named 'nope' (known: keys, other, t)"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(parse_error(text), message) << text;
  // src_tracked and table_tracked are no words: tracked is about counters.
  EXPECT_EQ(parse_error("src_tracked(t)").substr(0, 30), "unknown fetch 'src_tracked' (k");
  EXPECT_EQ(parse_error("src,table_tracked(t)"),
            "unknown converter 'table_tracked' (known: lower, upper, map, table_*)");
}

// The same mistakes in a configuration: file:line:column and the message.
TEST(StickFetchesConfig, BadArgumentsAreConfigurationErrors) {
  const auto load_with = [](std::string_view tables, std::string_view condition) {
    return load_config_text(std::string(tables) +
                                "frontends:\n  web:\n    bind: \"127.0.0.1:8080\"\n"
                                "    default_backend: app\n    http_request:\n"
                                "      - deny: true\n        if: \"" +
                                std::string(condition) +
                                "\"\nbackends:\n  app: {servers: {s1: \"127.0.0.1:9001\"}}\n",
                            "test.yaml");
  };
  const std::string two =
      "stick_tables:\n  a: {type: ip, size: 10, store: [conn_cur, \"gpc(2)\"]}\n"
      "  b: {type: string, size: 10, store: [conn_cnt]}\n";
  struct Case {
    std::string tables, condition, message;
  };
  const std::vector<Case> cases = {
      {two, "{ sc0_conn_cur(c) gt 1 }",
       "sc0_conn_cur: no stick table named 'c' (known: a, b) (written sc0_conn_cur([TABLE]))"},
      {two, "{ src_conn_cur gt 1 }",
       "src_conn_cur: name the table: the configuration has 2 (written src_conn_cur([TABLE]))"},
      {"", "{ src_conn_cur gt 1 }",
       "src_conn_cur: no stick table is defined (written src_conn_cur([TABLE]))"},
      {"", "{ sc0_conn_cur(a) gt 1 }",
       "sc0_conn_cur: no stick table named 'a' (none is defined) (written "
       "sc0_conn_cur([TABLE]))"},
      {two, "{ src_conn_cnt(a) gt 1 }",
       "src_conn_cnt: table 'a' does not store conn_cnt (written src_conn_cnt([TABLE]))"},
      {two, "{ sc1_get_gpc(2,a) gt 1 }",
       "sc1_get_gpc: table 'a' stores 2 gpc element(s), indexed from 0 (written "
       "sc1_get_gpc(IDX,[TABLE]))"},
      {two, "{ sc_conn_cur gt 1 }",
       "sc_conn_cur: the tracked counter's number is missing (written sc_conn_cur(N,[TABLE]))"},
      {two, "{ path,table_conn_cur(b) gt 1 }",
       "table_conn_cur: table 'b' does not store conn_cur (written table_conn_cur(TABLE))"},
      {two, "{ path,table_conn_cnt(b) gt 1 }", ""},  // fine: no error
  };
  for (const Case& c : cases) {
    const LoadResult r = load_with(c.tables, c.condition);
    if (c.message.empty()) {
      EXPECT_TRUE(r.config) << c.condition << ": "
                            << (r.errors.empty() ? "" : r.errors[0].to_string());
      continue;
    }
    ASSERT_EQ(r.errors.size(), 1u) << c.condition;
    const ConfigError& e = r.errors[0];
    EXPECT_EQ(e.file, "test.yaml");
    // On the line of the if: and the column of the word (or converter) at fault.
    const int line = 1 + static_cast<int>(std::count(c.tables.begin(), c.tables.end(), '\n')) + 6;
    EXPECT_EQ(e.line, line) << c.condition;
    const size_t comma = c.condition.find(",table_");
    const int column = 14 + static_cast<int>(comma == std::string::npos ? 2 : comma + 1);
    EXPECT_EQ(e.column, column) << c.condition;
    EXPECT_NE(e.message.find(c.message), std::string::npos)
        << c.condition << "\n  got: " << e.message << "\n  not: " << c.message;
  }
}

}  // namespace
}  // namespace weir
