// The key tables (load/key_table.*): how read_keys() runs a table, the JSON of
// `weir --dump-config-keys`, and that every registered table is what the loader
// accepts: each key known where it belongs, each word of a value accepted, and a
// made-up one refused there.

#include "common/config/load/key_table.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "common/config/load/loader.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;
using config_detail::Choice;
using config_detail::Fields;
using config_detail::Key;
using config_detail::KeyList;
using config_detail::YamlNode;

// ---- read_keys ---------------------------------------------------------------------------

// A scope that records which parsers ran, with which `what`.
struct Recorder {
  std::string label = "block";
  std::vector<std::string> calls;
};

bool good(Recorder& r, const YamlNode&, const std::string& what) {
  r.calls.push_back(what);
  return true;
}

bool bad(Recorder& r, const YamlNode&, const std::string& what) {
  r.calls.push_back(what + " (bad)");
  return false;
}

constexpr Key<Recorder> kToyKeys[] = {
    {"first", good}, {"second", bad}, {"third"}, {"fourth", good}};

Fields fields_of(const std::vector<std::string>& keys, const YamlNode& value) {
  Fields fields;
  for (const std::string& key : keys) fields.list.push_back({key, &value, &value});
  return fields;
}

TEST(ConfigKeyTable, ReadKeysRunsTheParsersOfPresentKeysInTableOrder) {
  const YamlNode value;
  Recorder r;
  // File order does not matter; a key without a parser is left to its section.
  EXPECT_TRUE(
      config_detail::read_keys(kToyKeys, fields_of({"fourth", "third", "first"}, value), r));
  EXPECT_EQ(r.calls, (std::vector<std::string>{"block: first", "block: fourth"}));
}

TEST(ConfigKeyTable, ReadKeysSaysWhetherEveryValueWasValidOrStopsAtTheFirstBadOne) {
  const YamlNode value;
  Recorder all;
  EXPECT_FALSE(config_detail::read_keys(kToyKeys, fields_of({"second", "fourth"}, value), all));
  EXPECT_EQ(all.calls, (std::vector<std::string>{"block: second (bad)", "block: fourth"}));
  Recorder first;
  EXPECT_FALSE(config_detail::read_keys(kToyKeys, fields_of({"second", "fourth"}, value), first,
                                        /*stop_at_invalid=*/true));
  EXPECT_EQ(first.calls, (std::vector<std::string>{"block: second (bad)"}));
}

TEST(ConfigKeyTable, NamesAndChoices) {
  constexpr Choice<int> kChoices[] = {{"one", 1}, {"two", 2}, {"three", 3}};
  constexpr auto kNames = config_detail::names_of(kChoices);
  EXPECT_EQ(std::vector<std::string_view>(kNames.begin(), kNames.end()),
            (std::vector<std::string_view>{"one", "two", "three"}));
  EXPECT_EQ(config_detail::find_choice(kChoices, "two"), 2);
  EXPECT_EQ(config_detail::find_choice(kChoices, "four"), std::nullopt);
  EXPECT_EQ(config_detail::one_of(kNames), "one, two or three");
  EXPECT_EQ(config_detail::one_of(std::span(kNames).first(2)), "one or two");
  EXPECT_EQ(config_detail::one_of(std::span(kNames).first(1)), "one");
}

// ---- the registered tables ---------------------------------------------------------------

std::vector<const KeyList*> registered() {
  return Registry<KeyList>::instance().entries();
}

TEST(ConfigKeyTable, DumpIsEveryTableAsJsonSortedByName) {
  const std::string json = config_keys_json();
  ASSERT_FALSE(registered().empty());
  size_t last_keys = 0;
  size_t last_values = 0;
  const size_t values_at = json.find("\"values\": {");
  ASSERT_NE(values_at, std::string::npos) << json;
  std::vector<const KeyList*> lists = registered();
  std::sort(lists.begin(), lists.end(),
            [](const KeyList* a, const KeyList* b) { return a->name < b->name; });
  for (const KeyList* list : lists) {
    std::string line = "\"" + std::string(list->name) + "\": [";
    const std::vector<std::string_view> words = list->words();
    ASSERT_FALSE(words.empty()) << list->name;
    for (size_t i = 0; i < words.size(); ++i) {
      line += (i ? ", \"" : "\"") + std::string(words[i]) + "\"";
    }
    line += "]";
    const size_t at = json.find(line);
    ASSERT_NE(at, std::string::npos) << line << " is not in\n" << json;
    // Under "keys" or "values" as its kind says, after the name before it.
    size_t& last = list->of == config_detail::kKeysOf ? last_keys : last_values;
    EXPECT_EQ(at < values_at, list->of == config_detail::kKeysOf) << list->name;
    EXPECT_GT(at, last) << list->name;
    last = at;
  }
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.substr(json.size() - 2), "}\n");
}

TEST(ConfigKeyTable, NoTableListsANameTwice) {
  for (const KeyList* list : registered()) {
    std::set<std::string_view> seen;
    for (const std::string_view name : list->names) {
      EXPECT_FALSE(name.empty()) << list->name;
      EXPECT_TRUE(seen.insert(name).second) << list->name << " lists '" << name << "' twice";
    }
  }
}

// YAML 1.1 (PyYAML, Ansible, older editors and linters) reads y/n, yes/no, on/off
// and true/false in any case as booleans: a key or a word that is one of them
// would reach weir changed by the operator's tools.
TEST(ConfigKeyTable, NoKeyOrWordIsAYaml11Boolean) {
  constexpr std::string_view kBooleans[] = {"y", "yes", "n", "no", "true", "false", "on", "off"};
  for (const KeyList* list : registered()) {
    for (const std::string_view word : list->words()) {
      std::string lower(word);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      EXPECT_EQ(std::find(std::begin(kBooleans), std::end(kBooleans), lower), std::end(kBooleans))
          << list->name << ": '" << word << "' is a boolean in YAML 1.1";
    }
  }
}

// Where each table's keys or words go: a configuration with `x` in that place.
// Every registered table must have one, so a new table is covered here too.
using Place = std::function<std::string(std::string_view x)>;

// Frontend 'web' with `keys` (and a bind of its own unless they have one).
std::string frontend_with(std::string_view keys, std::string_view mode = "http") {
  const std::string bind = keys.starts_with("bind:") ? "" : "bind: \"127.0.0.1:8080\", ";
  return "frontends:\n  web: {" + bind + "default_backend: app, mode: " + std::string(mode) + ", " +
         std::string(keys) + "}\nbackends:\n  app: {mode: " + std::string(mode) +
         ", servers: {s1: \"127.0.0.1:9001\"}}\n";
}

std::string backend_with(std::string_view keys) {
  return "frontends:\n  web: {bind: \"127.0.0.1:8080\", default_backend: app}\nbackends:\n"
         "  app: {servers: {s1: \"127.0.0.1:9001\"}, " +
         std::string(keys) + "}\n";
}

std::string server_with(std::string_view keys) {
  return "frontends:\n  web: {bind: \"127.0.0.1:8080\", default_backend: app}\nbackends:\n"
         "  app: {servers: {s1: {address: \"127.0.0.1:9001\", " +
         std::string(keys) + "}}}\n";
}

std::string global_with(std::string_view keys) {
  return "global: {" + std::string(keys) + "}\n" + std::string(kMinimal);
}

std::string s(std::string_view x) {
  return std::string(x);
}

// With stick table 't' defined: `stick_tables:` before `text` (a whole configuration).
std::string with_table(std::string_view table, const std::string& text) {
  return "stick_tables:\n  t: {" + s(table) + "}\n" + text;
}

// An http_request rule of frontend 'web' whose action `action` has the options
// `{required, KEY: ~}` (just `{required}` when KEY is the required one).
std::string stick_action_with(std::string_view action, std::string_view required,
                              std::string_view k) {
  const std::string options = required.empty() ? s(k) + ": ~"
                              : required.starts_with(s(k) + ":")
                                  ? s(required)
                                  : s(required) + ", " + s(k) + ": ~";
  return with_table("size: 10",
                    frontend_with("http_request: [{" + s(action) + ": {" + options + "}}]"));
}

const std::map<std::string, Place>& key_places() {
  static const std::map<std::string, Place> places = {
      {"top", [](auto k) { return s(k) + ": ~\n" + s(kMinimal); }},
      {"global", [](auto k) { return global_with(s(k) + ": ~"); }},
      {"global.tune", [](auto k) { return global_with("tune: {" + s(k) + ": ~}"); }},
      {"global.log",
       [](auto k) { return global_with("log: [{target: syslog, " + s(k) + ": ~}]"); }},
      {"global.runtime_api",
       [](auto k) {
         return global_with("runtime_api: [{address: /tmp/a.sock, " + s(k) + ": ~}]");
       }},
      {"global.timeouts", [](auto k) { return global_with("timeouts: {" + s(k) + ": 1s}"); }},
      {"defaults", [](auto k) { return "defaults: {" + s(k) + ": ~}\n" + s(kMinimal); }},
      {"defaults.timeouts",
       [](auto k) { return "defaults: {timeouts: {" + s(k) + ": 1s}}\n" + s(kMinimal); }},
      {"frontend", [](auto k) { return frontend_with(s(k) + ": ~"); }},
      {"frontend.timeouts", [](auto k) { return frontend_with("timeouts: {" + s(k) + ": 1s}"); }},
      {"frontend.bind",
       [](auto k) {
         return frontend_with("bind: [{address: \"127.0.0.1:8081\", " + s(k) + ": ~}]");
       }},
      {"frontend.bind.tls",
       [](auto k) {
         return frontend_with("bind: [{address: \"127.0.0.1:8081\", tls: {" + s(k) + ": ~}}]");
       }},
      {"frontend.bind.accept_proxy",
       [](auto k) {
         return frontend_with("bind: [{address: \"127.0.0.1:8081\", accept_proxy: {" + s(k) +
                              ": ~}}]");
       }},
      {"send_proxy", [](auto k) { return server_with("send_proxy: {" + s(k) + ": ~}"); }},
      {"frontend.stats", [](auto k) { return frontend_with("stats: {uri: /s, " + s(k) + ": ~}"); }},
      {"frontend.stats.auth",
       [](auto k) {
         return frontend_with("stats: {uri: /s, auth: {users: {a: b}, " + s(k) + ": ~}}");
       }},
      {"frontend.metrics", [](auto k) { return frontend_with("metrics: {" + s(k) + ": ~}"); }},
      {"frontend.http_request",
       [](auto k) { return frontend_with("http_request: [{" + s(k) + ": ~}]"); }},
      {"backend.http_request",
       [](auto k) { return backend_with("http_request: [{" + s(k) + ": ~}]"); }},
      {"http_response", [](auto k) { return frontend_with("http_response: [{" + s(k) + ": ~}]"); }},
      // deny, return and tarpit share their options; delay is tarpit's own.
      {"rule.deny",
       [](auto k) { return frontend_with("http_request: [{tarpit: {" + s(k) + ": ~}}]"); }},
      {"rule.redirect",
       [](auto k) { return frontend_with("http_request: [{redirect: {" + s(k) + ": ~}}]"); }},
      {"rule.set_header",
       [](auto k) { return frontend_with("http_request: [{set_header: {" + s(k) + ": ~}}]"); }},
      {"rule.del_header",
       [](auto k) { return frontend_with("http_request: [{del_header: {" + s(k) + ": ~}}]"); }},
      {"rule.replace_header",
       [](auto k) { return frontend_with("http_request: [{replace_header: {" + s(k) + ": ~}}]"); }},
      {"rule.set_var",
       [](auto k) { return frontend_with("http_request: [{set_var: {" + s(k) + ": ~}}]"); }},
      {"rule.capture",
       [](auto k) { return frontend_with("http_request: [{capture: {" + s(k) + ": ~}}]"); }},
      {"rule.set_status",
       [](auto k) { return frontend_with("http_response: [{set_status: {" + s(k) + ": ~}}]"); }},
      {"tcp_request",
       [](auto k) { return frontend_with("tcp_request: [{" + s(k) + ": ~}]", "tcp"); }},
      {"tcp_request.content",
       [](auto k) { return frontend_with("tcp_request: [{content: {" + s(k) + ": ~}}]", "tcp"); }},
      {"peers", [](auto k) { return "peers: {" + s(k) + ": ~}\n" + s(kMinimal); }},
      {"peers.nodes.node",
       [](auto k) { return "peers: {nodes: {a: {" + s(k) + ": ~}}}\n" + s(kMinimal); }},
      {"stick_tables.table",
       [](auto k) {
         return with_table(k == "size" ? "size: 10" : "size: 10, " + s(k) + ": ~", s(kMinimal));
       }},
      {"rule.track", [](auto k) { return stick_action_with("track", "table: t", k); }},
      {"rule.sc_inc_gpc", [](auto k) { return stick_action_with("sc_inc_gpc", "", k); }},
      {"rule.sc_clr_gpc", [](auto k) { return stick_action_with("sc_clr_gpc", "", k); }},
      {"rule.sc_set_gpt", [](auto k) { return stick_action_with("sc_set_gpt", "value: 1", k); }},
      {"backend", [](auto k) { return backend_with(s(k) + ": ~"); }},
      {"backend.timeouts", [](auto k) { return backend_with("timeouts: {" + s(k) + ": 1s}"); }},
      {"backend.balance",
       [](auto k) { return backend_with("balance: {algorithm: roundrobin, " + s(k) + ": ~}"); }},
      {"backend.stick",
       [](auto k) {
         return with_table("size: 10, store: [server_key]",
                           backend_with("stick: [{table: t, match: src, " + s(k) + ": ~}]"));
       }},
      {"backend.cookie",
       [](auto k) { return backend_with("cookie: {name: SRV, " + s(k) + ": ~}"); }},
      {"server", [](auto k) { return server_with(s(k) + ": ~"); }},
      {"server.tls", [](auto k) { return server_with("tls: {" + s(k) + ": ~}"); }},
      {"check", [](auto k) { return backend_with("check: {" + s(k) + ": ~}"); }},
      {"check.expect_http",
       [](auto k) { return backend_with("check: {type: http, expect: {" + s(k) + ": ~}}"); }},
      {"check.expect_tcp",
       [](auto k) { return backend_with("check: {expect: {string: x, " + s(k) + ": ~}}"); }},
      {"check.sequence_step",
       [](auto k) { return backend_with("check: {sequence: [{" + s(k) + ": ~}]}"); }},
      {"agent", [](auto k) { return backend_with("agent: {port: 1, " + s(k) + ": ~}"); }},
  };
  return places;
}

// The errorfiles place needs a file that exists.
std::string error_page() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "key_table_test_page.html";
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs("<p>sorry</p>\n", f);
    std::fclose(f);
    return p;
  }();
  return path;
}

const std::map<std::string, Place>& value_places() {
  static const std::map<std::string, Place> places = {
      {"mode", [](auto w) { return "defaults: {mode: " + s(w) + "}\n" + s(kMinimal); }},
      {"http_reuse", [](auto w) { return backend_with("http_reuse: " + s(w)); }},
      {"global.log.target", [](auto w) { return global_with("log: [{target: " + s(w) + "}]"); }},
      {"global.log.format",
       [](auto w) { return global_with("log: [{target: stdout, format: " + s(w) + "}]"); }},
      {"global.log.framing",
       [](auto w) { return global_with("log: [{target: syslog, framing: " + s(w) + "}]"); }},
      {"global.log.facility",
       [](auto w) { return global_with("log: [{target: syslog, facility: " + s(w) + "}]"); }},
      {"global.runtime_api.level",
       [](auto w) {
         return global_with("runtime_api: [{address: /tmp/a.sock, level: " + s(w) + "}]");
       }},
      {"backend.balance.algorithm",
       [](auto w) {
         const bool named = w == "hdr" || w == "url_param";
         return backend_with("balance: {algorithm: " + s(w) + (named ? ", name: x}" : "}"));
       }},
      {"backend.balance.hash_type",
       [](auto w) {
         return backend_with("balance: {algorithm: source, hash_type: " + s(w) + "}");
       }},
      {"backend.cookie.mode",
       [](auto w) { return backend_with("cookie: {name: SRV, mode: " + s(w) + "}"); }},
      {"check.type", [](auto w) { return backend_with("check: {type: " + s(w) + "}"); }},
      {"check.on_marked_down",
       [](auto w) { return backend_with("check: {on_marked_down: " + s(w) + "}"); }},
      {"check.on_marked_up",
       [](auto w) { return backend_with("check: {on_marked_up: " + s(w) + "}"); }},
      {"check.observe", [](auto w) { return backend_with("check: {observe: " + s(w) + "}"); }},
      {"check.on_error",
       [](auto w) { return backend_with("check: {observe: layer4, on_error: " + s(w) + "}"); }},
      {"errorfiles",
       [](auto w) { return frontend_with("errorfiles: {" + s(w) + ": " + error_page() + "}"); }},
      {"frontend.bind.tls.verify",
       [](auto w) {
         return frontend_with(
             "bind: [{address: \"127.0.0.1:8081\", tls: {certificates: /c.pem, "
             "ca_file: /ca.pem, verify: " +
             s(w) + "}}]");
       }},
      {"server.tls.verify", [](auto w) { return server_with("tls: {verify: " + s(w) + "}"); }},
      {"send_proxy.version", [](auto w) { return server_with("send_proxy: " + s(w)); }},
      {"send_proxy.tlvs",
       [](auto w) { return server_with("send_proxy: {version: v2, tlvs: [" + s(w) + "]}"); }},
      {"stick_tables.table.type",
       [](auto w) { return with_table("size: 10, type: " + s(w), s(kMinimal)); }},
      {"tcp_request.action",
       [](auto w) { return frontend_with("tcp_request: [{connection: " + s(w) + "}]", "tcp"); }},
      {"tls_version",
       [](auto w) {
         return frontend_with(
             "bind: [{address: \"127.0.0.1:8081\", tls: {certificates: /c.pem, "
             "min_version: " +
             s(w) + "}}]");
       }},
  };
  return places;
}

// Whether some message refuses the key `key` as not known there.
bool refused(const LoadResult& r, std::string_view key) {
  const std::string q = "'" + std::string(key) + "'";
  for (const ConfigError& e : r.errors) {
    const std::string& m = e.message;
    if (m.find(q) != std::string::npos &&
        (m.find("unknown") != std::string::npos || m.find("cannot be set") != std::string::npos)) {
      return true;
    }
    if (m.find(": " + std::string(key) + " is not a ") != std::string::npos ||
        m.find(": " + std::string(key) + " belongs to ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool mentions(const LoadResult& r, std::string_view word) {
  for (const ConfigError& e : r.errors) {
    if (e.message.find(word) != std::string::npos) return true;
  }
  return false;
}

TEST(ConfigKeyTable, EveryRegisteredTableIsCheckedHere) {
  for (const KeyList* list : registered()) {
    const auto& places = list->of == config_detail::kKeysOf ? key_places() : value_places();
    EXPECT_TRUE(places.count(std::string(list->name)))
        << "table '" << list->name << "' has no place in key_table_test.cpp";
  }
}

TEST(ConfigKeyTable, EveryKeyOfATableIsKnownWhereItBelongsAndNoOtherIs) {
  for (const KeyList* list : registered()) {
    if (list->of != config_detail::kKeysOf) continue;
    const auto place = key_places().find(std::string(list->name));
    if (place == key_places().end()) continue;
    for (const std::string_view key : list->names) {
      const LoadResult r = load(place->second(key));
      EXPECT_FALSE(refused(r, key))
          << list->name << ": '" << key << "' refused:" << describe(r.errors);
    }
    const LoadResult r = load(place->second("zz_made_up"));
    EXPECT_TRUE(refused(r, "zz_made_up")) << list->name << ":" << describe(r.errors);
  }
}

TEST(ConfigKeyTable, EveryWordOfAValueTableIsAcceptedAndNoOtherIs) {
  for (const KeyList* list : registered()) {
    if (list->of != config_detail::kValuesOf) continue;
    const auto place = value_places().find(std::string(list->name));
    if (place == value_places().end()) continue;
    for (const std::string_view word : list->names) {
      const LoadResult r = load(place->second(word));
      EXPECT_TRUE(loads(r)) << list->name << ": '" << word << "'";
    }
    const LoadResult r = load(place->second("zz_made_up"));
    EXPECT_TRUE(mentions(r, "zz_made_up")) << list->name << ":" << describe(r.errors);
  }
}

}  // namespace
}  // namespace weir
