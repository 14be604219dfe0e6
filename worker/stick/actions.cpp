// The stick-table actions of http_request / http_response and tcp_request
// rules (doc/stick-tables.md):
//
//   track: {table: NAME, key: SAMPLE (src), counter: 0..2 (0)}   or  track: NAME
//   sc_inc_gpc: {index: IDX (0), counter: N (0)}   gpc[IDX] and gpc_rate[IDX] + 1
//   sc_clr_gpc: {index, counter}                    gpc[IDX] = 0
//   sc_set_gpt: {index, counter, value: INT | SAMPLE}
//
// None ends the list of rules.

#include <cstdlib>

#include "worker/rules/actions.h"
#include "worker/stick/keys.h"
#include "worker/stick/trackers.h"

namespace weir::rule_actions {
namespace {

using stick::Trackers;

constexpr std::string_view kTrackKeys[] = {"table", "key", "counter"};
constexpr std::string_view kGpcKeys[] = {"index", "counter"};
constexpr std::string_view kGptKeys[] = {"index", "counter", "value"};

// What the stick actions read, from an http or a tcp_request rule.
struct StickScope {
  config_detail::Scope& scope;
  const YamlNode& value;
  const std::string& what;
  bool tcp;  // a tcp_request rule: the key must not need HTTP
};

bool read_counter(const StickScope& s, const Fields& o, StickAction& out) {
  if (const YamlNode* c = o.get("counter")) {
    auto n = s.scope.int_value(*c, s.what + ": counter", 0, stick::kTrackedCounters - 1);
    if (!n) return false;
    out.counter = static_cast<int>(*n);
  }
  return true;
}

bool read_index(const StickScope& s, const Fields& o, StickAction& out) {
  if (const YamlNode* i = o.get("index")) {
    auto n = s.scope.int_value(*i, s.what + ": index", 0, stick::kMaxArray - 1);
    if (!n) return false;
    out.index = static_cast<uint32_t>(*n);
  }
  return true;
}

std::shared_ptr<const StickAction> read_track(const StickScope& s) {
  auto out = std::make_shared<StickAction>();
  config_detail::Loader& loader = s.scope.loader;
  const YamlNode* table = &s.value;
  const YamlNode* key = nullptr;
  if (s.value.kind == Kind::kMap) {
    const Fields o = loader.map_fields(s.value, s.what);
    loader.reject_unknown(o, kTrackKeys, "in " + s.what);
    table = o.get("table");
    if (!table) {
      s.scope.error(s.value.mark, s.what + " needs a table: {table: NAME, key: src}");
      return nullptr;
    }
    key = o.get("key");
    if (!read_counter(s, o, *out)) return nullptr;
  }
  out->table = loader.stick_table_value(*table, s.what);
  if (!out->table) return nullptr;
  if (key) {
    auto smp = loader.sample_value(*key, s.what + ": key");
    if (!smp) return nullptr;
    if (s.tcp && smp->fetch.http_only()) {
      s.scope.error(key->mark, s.what + ": key " + quoted(smp->text) +
                                   " needs an HTTP request (track it in http_request)");
      return nullptr;
    }
    if (smp->fetch.response_only()) {
      s.scope.error(key->mark, s.what + ": key " + quoted(smp->text) + " needs the response");
      return nullptr;
    }
    out->key = std::move(*smp);
  } else {
    cond::FileCache none;
    cond::ParseError pe;
    out->key = *cond::parse_sample("src", none, &pe);
  }
  return out;
}

std::shared_ptr<const StickAction> read_gpc(const StickScope& s, bool with_value) {
  auto out = std::make_shared<StickAction>();
  config_detail::Loader& loader = s.scope.loader;
  if (s.value.kind == Kind::kNull) {
    if (with_value) {
      s.scope.error(s.value.mark, s.what + " needs a value: {index: 0, counter: 0, value: 1}");
      return nullptr;
    }
    return out;
  }
  if (s.value.kind != Kind::kMap) {
    s.scope.error(s.value.mark, s.what + ": a map such as {index: 0, counter: 0" +
                                    std::string(with_value ? ", value: 1}" : "}"));
    return nullptr;
  }
  const Fields o = loader.map_fields(s.value, s.what);
  if (with_value) {
    loader.reject_unknown(o, kGptKeys, "in " + s.what);
  } else {
    loader.reject_unknown(o, kGpcKeys, "in " + s.what);
  }
  if (!read_counter(s, o, *out) || !read_index(s, o, *out)) return nullptr;
  if (with_value) {
    const YamlNode* v = o.get("value");
    if (!v) {
      s.scope.error(s.value.mark, s.what + " needs a value: a number or a sample");
      return nullptr;
    }
    // A number, or a sample; "-1" is a number out of range, not an unknown fetch.
    const size_t digits = v->scalar.starts_with('-') ? 1 : 0;
    const bool number = v->kind == Kind::kScalar && v->scalar.size() > digits &&
                        v->scalar.find_first_not_of("0123456789", digits) == std::string::npos;
    if (number) {
      auto n = s.scope.int_value(*v, s.what + ": value", 0, UINT32_MAX);
      if (!n) return nullptr;
      out->constant = *n;
    } else {
      auto smp = loader.sample_value(*v, s.what + ": value");
      if (!smp) return nullptr;
      if (s.tcp && smp->fetch.http_only()) {
        s.scope.error(v->mark, s.what + ": value " + quoted(smp->text) + " needs an HTTP request");
        return nullptr;
      }
      out->value = std::move(*smp);
    }
  }
  return out;
}

// ---- running them

void track(const StickAction& a, SampleSource& ctx, Trackers::Stage stage) {
  if (!ctx.sc) return;
  if (*ctx.sc && (*ctx.sc)->tracked(a.counter)) return;  // the counter keeps its entry
  thread_local std::string key;
  if (!stick::sample_key(a.key, a.table->def(), ctx, &key)) return;
  if (!*ctx.sc) *ctx.sc = std::make_unique<Trackers>();
  (*ctx.sc)->track(a.counter, *a.table, key, stage, stick::clock_now());
}

Trackers* trackers(SampleSource& ctx) {
  return ctx.sc && *ctx.sc ? ctx.sc->get() : nullptr;
}

void inc_gpc(const StickAction& a, SampleSource& ctx) {
  if (Trackers* t = trackers(ctx)) t->inc_gpc(a.counter, a.index, stick::clock_now());
}

void clr_gpc(const StickAction& a, SampleSource& ctx) {
  if (Trackers* t = trackers(ctx)) t->clear_gpc(a.counter, a.index, stick::clock_now());
}

void set_gpt(const StickAction& a, SampleSource& ctx) {
  Trackers* t = trackers(ctx);
  if (!t) return;
  int64_t v = a.constant;
  if (a.value) {
    std::vector<cond::Sample> vals;
    ctx.fetch(a.value->fetch, vals);
    if (!a.value->converters.empty()) {
      auto text = a.value->evaluate(ctx);
      if (!text) return;
      v = std::strtoll(text->c_str(), nullptr, 10);
    } else if (vals.empty()) {
      return;
    } else if (vals.front().type == cond::Type::kString) {
      v = std::strtoll(std::string(vals.front().str).c_str(), nullptr, 10);
    } else {
      v = vals.front().num;
    }
  }
  t->set_gpt(a.counter, a.index, v, stick::clock_now());
}

// ---- http rules

template <bool kWithValue>
bool http_read_gpc(ActionScope& s, const YamlNode& v, const std::string& what) {
  s.rule.stick = read_gpc({s, v, what, false}, kWithValue);
  return s.rule.stick != nullptr;
}

bool http_read_track(ActionScope& s, const YamlNode& v, const std::string& what) {
  s.rule.stick = read_track({s, v, what, false});
  return s.rule.stick != nullptr;
}

void http_track(const HttpRule& r, RuleRun& run) {
  track(*r.stick, run.ctx, Trackers::Stage::kRequest);
}
void http_inc_gpc(const HttpRule& r, RuleRun& run) {
  inc_gpc(*r.stick, run.ctx);
}
void http_clr_gpc(const HttpRule& r, RuleRun& run) {
  clr_gpc(*r.stick, run.ctx);
}
void http_set_gpt(const HttpRule& r, RuleRun& run) {
  set_gpt(*r.stick, run.ctx);
}

constexpr HttpActionDef kHttpStickActions[] = {
    {"track", kInRequest, false, http_read_track, http_track},
    {"sc_inc_gpc", kInBoth, false, http_read_gpc<false>, http_inc_gpc},
    {"sc_clr_gpc", kInBoth, false, http_read_gpc<false>, http_clr_gpc},
    {"sc_set_gpt", kInBoth, false, http_read_gpc<true>, http_set_gpt},
};
const Registrar<HttpActionDef> kRegisterHttp(kHttpStickActions);

// ---- tcp_request rules

template <bool kWithValue>
bool tcp_read_gpc(TcpActionScope& s, const YamlNode& v, const std::string& what) {
  s.rule.stick = read_gpc({s, v, what, true}, kWithValue);
  return s.rule.stick != nullptr;
}

bool tcp_read_track(TcpActionScope& s, const YamlNode& v, const std::string& what) {
  s.rule.stick = read_track({s, v, what, true});
  return s.rule.stick != nullptr;
}

bool tcp_track(const TcpRule& r, TcpRuleRun& run) {
  track(*r.stick, run.ctx,
        run.stage == TcpRule::Stage::kConnection ? Trackers::Stage::kConnection
                                                 : Trackers::Stage::kContent);
  return true;
}
bool tcp_inc_gpc(const TcpRule& r, TcpRuleRun& run) {
  inc_gpc(*r.stick, run.ctx);
  return true;
}
bool tcp_clr_gpc(const TcpRule& r, TcpRuleRun& run) {
  clr_gpc(*r.stick, run.ctx);
  return true;
}
bool tcp_set_gpt(const TcpRule& r, TcpRuleRun& run) {
  set_gpt(*r.stick, run.ctx);
  return true;
}

constexpr TcpActionDef kTcpStickActions[] = {
    {"track", true, "{table: NAME, key: SAMPLE}", false, tcp_read_track, tcp_track, false},
    {"sc_inc_gpc", true, "{index, counter}", false, tcp_read_gpc<false>, tcp_inc_gpc, false},
    {"sc_clr_gpc", true, "{index, counter}", false, tcp_read_gpc<false>, tcp_clr_gpc, false},
    {"sc_set_gpt", true, "{index, counter, value}", false, tcp_read_gpc<true>, tcp_set_gpt, false},
};
const Registrar<TcpActionDef> kRegisterTcp(kTcpStickActions);

constexpr KeyList kLists[] = {
    {"rule.track", kKeysOf, kTrackKeys},
    {"rule.sc_inc_gpc", kKeysOf, kGpcKeys},
    {"rule.sc_clr_gpc", kKeysOf, kGpcKeys},
    {"rule.sc_set_gpt", kKeysOf, kGptKeys},
};
const Registrar<KeyList> kRegisterOptions(kLists);

}  // namespace
}  // namespace weir::rule_actions
