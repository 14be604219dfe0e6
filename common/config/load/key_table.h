#pragma once
// The tables that say which keys each map of weir.yaml accepts and which words an
// enumerated value may be. Each table sits beside the parsers of its section
// (frontend.cpp holds kFrontendKeys and a function per key), so that adding a key
// is one line in a table and the function that reads its value:
//
//   constexpr Key<BackendScope> kBackendKeys[] = {
//       {"redispatch", flag<&BackendConfig::redispatch>},
//       {"balance", read_balance},
//       ...};
//
// The same table gives the unknown-key errors and their "did you mean" (in table
// order: among equally close keys the first is suggested). Each file also
// registers its tables by name (Registrar<KeyList>), and
// `weir --dump-config-keys` prints them all for scripts/check-schema.py, which
// compares them with doc/weir.schema.json.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/base/registry.h"
#include "common/config/load/value_reader.h"

namespace weir::config_detail {

// One key of a map: its name and the function that reads its value into the
// section's scope (the object being filled and what its keys need to know).
// `what` starts every message about the value ("frontend 'web': maxconn"). The
// function reports what is wrong and returns false when the value is not valid.
// parse == nullptr: the section reads the key itself, before the others (they
// depend on it) or after them; the comment beside the entry says which.
template <typename Scope>
struct Key {
  std::string_view name;
  bool (*parse)(Scope& scope, const YamlNode& value, const std::string& what) = nullptr;
};

// One word of an enumerated value and what it means.
template <typename T>
struct Choice {
  std::string_view name;
  T value;
};

// The names of a table, in table order.
template <typename Entry, size_t N>
constexpr std::array<std::string_view, N> names_of(const Entry (&table)[N]) {
  std::array<std::string_view, N> names{};
  for (size_t i = 0; i < N; ++i) names[i] = table[i].name;
  return names;
}

// Reads each key of `table` that `fields` holds, in table order (so a key whose
// parser looks at another key's value comes after it in the table). `scope.label`
// and the key's name make `what`. True when every value read was valid.
// stop_at_invalid: stop at the first value that is not (for maps whose later keys
// mean nothing once an earlier one is wrong).
template <typename Scope, size_t N>
bool read_keys(const Key<Scope> (&table)[N], const Fields& fields, Scope& scope,
               bool stop_at_invalid = false) {
  bool ok = true;
  for (const Key<Scope>& key : table) {
    if (!key.parse) continue;
    if (const YamlNode* value = fields.get(key.name)) {
      ok = key.parse(scope, *value, scope.label + ": " + std::string(key.name)) && ok;
      if (!ok && stop_at_invalid) return false;
    }
  }
  return ok;
}

template <typename T, size_t N>
std::optional<T> find_choice(const Choice<T> (&table)[N], std::string_view word) {
  for (const Choice<T>& choice : table) {
    if (choice.name == word) return choice.value;
  }
  return std::nullopt;
}

// Parsers for the usual kinds of value, for a table line such as
// {"redispatch", flag<&BackendConfig::redispatch>}: each sets a member of the
// scope's `out` and reports a bad value through the scope.
template <auto Member, typename Scope>
bool flag(Scope& s, const YamlNode& v, const std::string& what) {
  const auto b = s.bool_value(v, what);
  if (b) s.out.*Member = *b;
  return b.has_value();
}

template <auto Member, int64_t Min, int64_t Max, typename Scope>
bool integer(Scope& s, const YamlNode& v, const std::string& what) {
  const auto n = s.int_value(v, what, Min, Max);
  if (n) s.out.*Member = static_cast<std::remove_reference_t<decltype(s.out.*Member)>>(*n);
  return n.has_value();
}

template <auto Member, uint64_t Min, uint64_t Max, typename Scope>
bool size(Scope& s, const YamlNode& v, const std::string& what) {
  const auto n = s.size_value(v, what, Min, Max);
  if (n) s.out.*Member = static_cast<std::remove_reference_t<decltype(s.out.*Member)>>(*n);
  return n.has_value();
}

// Milliseconds.
template <auto Member, typename Scope>
bool duration(Scope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (ms) s.out.*Member = *ms;
  return ms.has_value();
}

template <auto Member, typename Scope>
bool text(Scope& s, const YamlNode& v, const std::string& what) {
  auto t = s.string_value(v, what);
  if (t) s.out.*Member = std::move(*t);
  return t.has_value();
}

// One of the words of a Choice table. `unknown` starts the message about any other
// word: "<unknown> 'x' (expected a, b or c)".
template <auto Member, const auto& Choices, typename Scope>
bool choice(Scope& s, const YamlNode& v, const std::string& what, const std::string& unknown) {
  static constexpr auto kNames = names_of(Choices);
  const auto word = s.text_value(v, what, one_of(kNames));
  if (!word) return false;
  const auto value = find_choice(Choices, *word);
  if (!value) {
    s.error(v.mark, unknown + " " + quoted(*word) + " (expected " + one_of(kNames) + ")");
    return false;
  }
  s.out.*Member = *value;
  return true;
}

// A table as `weir --dump-config-keys` shows it: the keys of a map or the words of
// a value, under a name that says where in weir.yaml ("frontend.bind",
// "backend.balance.algorithm"; scripts/check-schema.py maps each name to the
// schema).
struct KeyList {
  enum class Of { kKeys, kValues };
  std::string_view name;
  Of of;
  std::span<const std::string_view> names;
  // Words that modules register instead (balance algorithms, hash types).
  std::vector<std::string_view> (*registered)() = nullptr;

  // The words of the list, whichever way they are given.
  std::vector<std::string_view> words() const {
    if (registered) return registered();
    return {names.begin(), names.end()};
  }
};
inline constexpr KeyList::Of kKeysOf = KeyList::Of::kKeys;
inline constexpr KeyList::Of kValuesOf = KeyList::Of::kValues;

// Every registered KeyList as one JSON object, names sorted:
// {"keys": {"frontend": ["bind", ...], ...}, "values": {"mode": ["http", "tcp"], ...}}
std::string key_lists_json();

}  // namespace weir::config_detail
