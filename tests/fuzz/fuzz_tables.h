#pragma once
// Stick tables for the peers fuzz targets (peers_message, node_message): small
// tables of a given key type storing the data named in a null-terminated list.

#include <string>

#include "common/stick/datum.h"
#include "common/stick/table.h"

namespace weir::fuzz {

inline stick::TableDef table_def(const std::string& name, stick::KeyType type,
                                 const char* const* store, bool sync = false) {
  stick::TableDef d;
  d.name = name;
  d.type = type;
  d.key_size = 16;
  d.size = 64;
  d.expire_ms = 60000;
  d.sync = sync;
  for (; *store; ++store) {
    std::string error;
    auto s = stick::parse_stored(*store, &error);
    if (s) d.store.push_back(*s);
  }
  return d;
}

}  // namespace weir::fuzz
