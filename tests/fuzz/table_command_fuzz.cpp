// libFuzzer target: the arguments of the stick-table commands of the runtime
// API (show table / clear table / set table, worker/stick/commands.h), and the
// keys an operator types for each table type. The first byte picks the verb
// and the key type, the rest is the command line's words. Whatever the words,
// no crash; a refusal says why; an accepted command keeps what its words said
// (each data.X names a datum that reads back the same way, filters carry a
// number, `set` has a key and a value per datum); a key accepted for a table
// prints as text that reads back as the same key.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/stick/table.h"
#include "tests/fuzz/fuzz_common.h"
#include "worker/stick/commands.h"

using weir::fuzz::check;
namespace stick = weir::stick;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string line(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    size_t end = pos;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    if (end > pos) words.push_back(std::string_view(line).substr(pos, end - pos));
    pos = end;
  }
  const auto verb = static_cast<stick::TableCommand::Verb>(selector % 3);
  std::string error;
  auto c = stick::parse_table_command(verb, words, &error);
  if (!c) {
    check(!error.empty(), "a refusal says why");
  } else {
    check(verb == stick::TableCommand::Verb::kShow || !c->table.empty(), "a table is named");
    for (const auto& f : c->filters) {
      const std::string label = stick::data_label(f.data, 0);
      if (stick::info(f.data.datum).shape != stick::Shape::kRate) {
        auto back = stick::parse_data_ref(label);
        check(back && back->datum == f.data.datum && back->index == f.data.index,
              "a filter's datum reads back");
      }
    }
    if (verb == stick::TableCommand::Verb::kSet) {
      check(c->key.has_value() && !c->sets.empty(), "set has a key and data");
    }
  }
  // Keys typed by an operator, for each table type.
  stick::TableDef def;
  def.type = static_cast<stick::KeyType>((selector / 3) % 5);
  def.key_size = 1 + (selector % 64);
  std::string key;
  if (stick::key_from_command(def, line, &key)) {
    const std::string text = stick::key_text(def, key);
    std::string again;
    check(stick::key_from_command(def, text, &again), "a printed key reads back");
    check(again == key, "a printed key reads back the same");
  }
  return 0;
}
