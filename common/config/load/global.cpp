// global: and global.tune: what the whole process uses (threads, limits, the
// account to run as, the master's paths). Log targets (log_targets.cpp), runtime-API
// endpoints (runtime_api.cpp) and global.timeouts (timeouts.cpp) have their own files.

#include <cstdint>

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

// The capacity of the HTTP parser's header table (worker/http/h1/http_codec.h kMaxHeaders).
constexpr int64_t kMaxHeadersLimit = 1000;

struct GlobalScope : Scope {
  GlobalConfig& out;
};

// An empty user, group or pidfile means "not set", so that ${WEIR_USER:-} works.
bool read_user(GlobalScope& s, const YamlNode& v, const std::string& what) {
  auto name = s.string_value(v, what);
  if (!name) return false;
  if (!name->empty() && !user_exists(*name)) {
    s.error(v.mark, what + ": no such user " + quoted(*name));
  }
  s.out.user = std::move(*name);
  return true;
}

bool read_group(GlobalScope& s, const YamlNode& v, const std::string& what) {
  auto name = s.string_value(v, what);
  if (!name) return false;
  if (!name->empty() && !group_exists(*name)) {
    s.error(v.mark, what + ": no such group " + quoted(*name));
  }
  s.out.group = std::move(*name);
  return true;
}

// Paths the master itself uses; their marks let the start-up checks point at them.
template <std::string GlobalConfig::*Path, SourceMark GlobalConfig::*Mark>
bool absolute_path(GlobalScope& s, const YamlNode& v, const std::string& what) {
  auto path = s.string_value(v, what);
  if (!path) return false;
  if (!path->empty() && path->front() != '/') {
    s.error(v.mark, what + ": must be an absolute path (got " + quoted(*path) + ")");
  }
  s.out.*Path = std::move(*path);
  s.out.*Mark = v.mark;
  return true;
}

bool read_ticket_secret(GlobalScope& s, const YamlNode& v, const std::string& what) {
  auto path = s.string_value(v, what);
  if (!path) return false;
  s.out.tls_ticket_secret_file = std::move(*path);
  s.out.tls_ticket_secret_mark = v.mark;
  return true;
}

bool read_timeouts(GlobalScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_global_timeouts(v, s.out);
  return true;
}

constexpr Key<GlobalScope> kTuneKeys[] = {
    {"bufsize", size<&GlobalConfig::bufsize, 1024, 1024ULL * 1024>},
    {"splice_threshold", size<&GlobalConfig::splice_threshold, 0, SIZE_MAX>},
    {"max_headers", integer<&GlobalConfig::max_headers, 1, kMaxHeadersLimit>},
};
constexpr auto kTuneNames = names_of(kTuneKeys);

bool read_tune(GlobalScope& s, const YamlNode& v, const std::string&) {
  const Fields fields = s.loader.map_fields(v, "global.tune");
  s.loader.reject_unknown(fields, kTuneNames, "in global.tune");
  GlobalScope tune{{s.loader, "global.tune"}, s.out};
  read_keys(kTuneKeys, fields, tune);
  return true;
}

constexpr Key<GlobalScope> kGlobalKeys[] = {
    {"threads", integer<&GlobalConfig::threads, 1, 64>},
    {"maxconn", integer<&GlobalConfig::maxconn, 1, kMaxConn>},
    {"user", read_user},
    {"group", read_group},
    {"pidfile", absolute_path<&GlobalConfig::pidfile, &GlobalConfig::pidfile_mark>},
    {"log", read_with<&Loader::load_logs>},
    {"tune", read_tune},
    {"timeouts", read_timeouts},
    {"max_old_generations", integer<&GlobalConfig::max_old_generations, 1, 1000>},
    {"master_socket",
     absolute_path<&GlobalConfig::master_socket, &GlobalConfig::master_socket_mark>},
    {"runtime_api", read_with<&Loader::load_runtime_api>},
    {"state_file", absolute_path<&GlobalConfig::state_file, &GlobalConfig::state_file_mark>},
    {"tls_ticket_secret_file", read_ticket_secret},
    {"state_dir", absolute_path<&GlobalConfig::state_dir, &GlobalConfig::state_dir_mark>},
    {"state_save_interval", duration<&GlobalConfig::state_save_interval>},
};
constexpr auto kGlobalNames = names_of(kGlobalKeys);

constexpr KeyList kLists[] = {
    {"global", kKeysOf, kGlobalNames},
    {"global.tune", kKeysOf, kTuneNames},
};
const Registrar<KeyList> kRegisterGlobal(kLists);

}  // namespace

void Loader::load_global(const YamlNode& node) {
  const Fields fields = map_fields(node, "global");
  reject_unknown(fields, kGlobalNames, "in global");
  GlobalScope scope{{*this, "global"}, config.global};
  read_keys(kGlobalKeys, fields, scope);
}

}  // namespace weir::config_detail
