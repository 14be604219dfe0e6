#include "common/config/load/key_table.h"

#include <algorithm>
#include <vector>

namespace weir::config_detail {
namespace {

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string key_lists_json() {
  std::vector<const KeyList*> lists = Registry<KeyList>::instance().entries();
  std::sort(lists.begin(), lists.end(),
            [](const KeyList* a, const KeyList* b) { return a->name < b->name; });
  std::string out = "{";
  for (const KeyList::Of of : {kKeysOf, kValuesOf}) {
    out += of == kKeysOf ? "\n  \"keys\": {" : ",\n  \"values\": {";
    bool first = true;
    for (const KeyList* list : lists) {
      if (list->of != of) continue;
      out += first ? "\n    " : ",\n    ";
      first = false;
      append_json_string(out, list->name);
      out += ": [";
      const std::vector<std::string_view> words = list->words();
      for (size_t i = 0; i < words.size(); ++i) {
        if (i > 0) out += ", ";
        append_json_string(out, words[i]);
      }
      out += ']';
    }
    out += "\n  }";
  }
  return out + "\n}\n";
}

}  // namespace weir::config_detail

namespace weir {

std::string config_keys_json() {
  return config_detail::key_lists_json();
}

}  // namespace weir
