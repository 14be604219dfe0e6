#pragma once
// Tables that modules fill before main() runs. A module declares what it adds
// to weir (condition fetches, rule actions, runtime-API commands, load-balancing
// algorithms, ...) in a table beside the code that implements it, and registers
// the table with one line at the end of its file:
//
//   constexpr FetchDef kTlsFetches[] = {{"ssl_fc", ...}, {"ssl_sni", ...}};
//   const Registrar<FetchDef> kRegisterTlsFetches(kTlsFetches);
//
// Nothing central lists the modules. Every entry type has a `name` (the word a
// user writes); a name registered twice is a programming error, reported and
// fatal at start. Registration runs during static initialisation,
// so the libraries that register are linked whole into every executable (see
// weir_link_modules in CMakeLists.txt): otherwise the linker would drop a
// file whose only job is to register.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace weir {

template <typename Entry>
class Registry {
 public:
  static Registry& instance() {
    static Registry registry;
    return registry;
  }

  void add(std::span<const Entry> table) {
    for (const Entry& e : table) {
      if (find(e.name)) {
        std::fprintf(stderr, "weir: bug: '%.*s' is registered twice\n",
                     static_cast<int>(e.name.size()), e.name.data());
        std::abort();
      }
      entries_.push_back(&e);
    }
  }

  // Every entry, in registration order (an order that may differ between
  // builds: sort before showing it to a user).
  const std::vector<const Entry*>& entries() const { return entries_; }

  // Every entry sorted by name: the order to show them in (help, listings).
  std::vector<const Entry*> sorted() const {
    std::vector<const Entry*> out = entries_;
    std::sort(out.begin(), out.end(),
              [](const Entry* a, const Entry* b) { return a->name < b->name; });
    return out;
  }

  const Entry* find(std::string_view name) const {
    for (const Entry* e : entries_)
      if (e->name == name) return e;
    return nullptr;
  }

 private:
  Registry() = default;
  std::vector<const Entry*> entries_;
};

// Registers a table; an object of this type at namespace scope does it before
// main() runs.
template <typename Entry>
struct Registrar {
  explicit Registrar(std::span<const Entry> table) { Registry<Entry>::instance().add(table); }
};

}  // namespace weir
