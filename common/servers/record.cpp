// Server records: merging and what a worker runs to follow one (record.h).

#include "common/servers/record.h"

namespace weir::servers {

bool newer(const proto::ServerStamp& a, const proto::ServerStamp& b) {
  if (a.hlc() != b.hlc()) return a.hlc() > b.hlc();
  return a.node() > b.node();
}

bool merge(proto::ServerRecord& into, const proto::ServerRecord& from) {
  bool changed = false;
  if (newer(from.admin_at(), into.admin_at())) {
    into.set_admin_state(from.admin_state());
    *into.mutable_admin_at() = from.admin_at();
    changed = true;
  }
  if (newer(from.weight_at(), into.weight_at())) {
    into.set_weight(from.weight());
    into.set_configured_weight(from.configured_weight());
    *into.mutable_weight_at() = from.weight_at();
    changed = true;
  }
  if (newer(from.address_at(), into.address_at())) {
    into.set_address(from.address());
    into.set_configured_address(from.configured_address());
    *into.mutable_address_at() = from.address_at();
    changed = true;
  }
  if (newer(from.added_at(), into.added_at())) {
    into.set_added(from.added());
    *into.mutable_added_at() = from.added_at();
    changed = true;
  }
  if (newer(from.deleted_at(), into.deleted_at())) {
    *into.mutable_deleted_at() = from.deleted_at();
    // A configured server's delete holds while its configured address does.
    if (from.added_at().hlc() == 0 && !from.configured_address().empty() &&
        into.address_at().hlc() == 0) {
      into.set_configured_address(from.configured_address());
    }
    changed = true;
  }
  return changed;
}

bool present(const proto::ServerRecord& r, bool configured) {
  if (r.added_at().hlc() == 0 && r.deleted_at().hlc() == 0) return configured;
  return newer(r.added_at(), r.deleted_at()) && (r.added_at().hlc() != 0 || configured);
}

bool Store::merge(const proto::ServerRecord& r) {
  std::string key = r.backend() + "/" + r.server();
  auto it = records_.find(key);
  if (it == records_.end()) {
    records_.emplace(std::move(key), r);
    return true;
  }
  return servers::merge(it->second, r);
}

const proto::ServerRecord* Store::find(std::string_view backend, std::string_view server) const {
  std::string key;
  key.reserve(backend.size() + 1 + server.size());
  key.append(backend).append("/").append(server);
  auto it = records_.find(key);
  return it == records_.end() ? nullptr : &it->second;
}

void Store::all(proto::ServerRecords* out) const {
  for (const auto& [key, r] : records_) *out->add_records() = r;
}

namespace {

bool is_word(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c == ' ' || c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool one_line(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

}  // namespace

bool well_formed(const proto::ServerRecord& r) {
  return is_word(r.backend()) && is_word(r.server()) &&
         is_word(r.admin_state().empty() ? "-" : r.admin_state()) && one_line(r.address()) &&
         one_line(r.added());
}

std::vector<std::string> commands_for(const proto::ServerRecord& r, const ServerNow& now) {
  std::vector<std::string> out;
  const std::string target = r.backend() + "/" + r.server();
  bool wanted = present(r, now.configured);
  // A configured server deleted at runtime comes back when the configuration
  // gave it another address since: the configuration is the newer word.
  if (!wanted && now.configured && r.added_at().hlc() == 0 && !r.configured_address().empty() &&
      r.configured_address() != now.configured_address) {
    wanted = true;
  }
  if (!wanted) {
    if (now.exists) {
      out.push_back("set server " + target + " state maint");
      out.push_back("del server " + target);
    }
    return out;
  }
  bool fresh = false;
  if (!now.exists) {
    if (r.added().empty()) return out;  // nothing says how to make it
    out.push_back("add server " + target + " " + r.added());
    fresh = true;
  }
  // A runtime weight or address of a configured server holds while the
  // configuration says what it said when it was set.
  const bool runtime = !now.configured;
  if (r.admin_at().hlc() != 0 && (fresh || r.admin_state() != now.admin_state)) {
    out.push_back("set server " + target + " state " + r.admin_state());
  }
  if (r.weight_at().hlc() != 0 && (runtime || r.configured_weight() == now.configured_weight) &&
      (fresh || r.weight() != now.weight)) {
    out.push_back("set server " + target + " weight " + std::to_string(r.weight()));
  }
  if (r.address_at().hlc() != 0 && (runtime || r.configured_address() == now.configured_address) &&
      (fresh || r.address() != now.address)) {
    out.push_back("set server " + target + " addr " + r.address());
  }
  return out;
}

}  // namespace weir::servers
