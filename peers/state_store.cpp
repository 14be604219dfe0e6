// The peers agent's state file (state_store.h).

#include "peers/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "common/ipc/state_text.h"
#include "common/proto/peers.pb.h"
#include "common/stick/sync.h"

namespace weir::peers {
namespace {

constexpr std::string_view kMagic = "weir-tables";
constexpr uint32_t kVersion = 1;
// A record larger than this is damage, not data (a batch is 256 rows).
constexpr uint32_t kMaxRecord = 64u << 20;

void put_record(std::string* out, const std::string& bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 24)};
  out->append(len, 4);
  out->append(bytes);
}

// The next record of `data` from *pos; false at the end or on damage (*error).
bool next_record(std::string_view data, size_t* pos, std::string_view* rec, std::string* error) {
  if (*pos == data.size()) return false;
  if (data.size() - *pos < 4) {
    *error = "cut short in a record's length at byte " + std::to_string(*pos);
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + *pos);
  const uint32_t n = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
  if (n > kMaxRecord) {
    *error = "a record of " + std::to_string(n) + " bytes at byte " + std::to_string(*pos);
    return false;
  }
  if (data.size() - *pos - 4 < n) {
    *error = "cut short in a record at byte " + std::to_string(*pos);
    return false;
  }
  *rec = data.substr(*pos + 4, n);
  *pos += 4 + n;
  return true;
}

bool read_file(const std::string& path, std::string* out, bool* missing, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *missing = errno == ENOENT;
    *error = std::strerror(errno);
    return false;
  }
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    *error = "read error";
    return false;
  }
  return true;
}

}  // namespace

LoadReport load_tables(const std::string& path, const Tables& tables, const stick::Now& now,
                       servers::Store* servers) {
  LoadReport r;
  std::string data;
  if (!read_file(path, &data, &r.missing, &r.error)) {
    if (r.missing) r.error.clear();
    return r;
  }
  return load_tables_from(data, tables, now, servers);
}

LoadReport load_tables_from(std::string_view data, const Tables& tables, const stick::Now& now,
                            servers::Store* servers) {
  LoadReport r;
  // First pass: the whole file is sound.
  size_t pos = 0;
  std::string_view rec;
  proto::StateHeader header;
  if (!next_record(data, &pos, &rec, &r.error) ||
      !header.ParseFromArray(rec.data(), static_cast<int>(rec.size())) ||
      header.magic() != kMagic) {
    if (r.error.empty()) r.error = "not a weir state file";
    return r;
  }
  if (header.version() != kVersion) {
    r.error = "state file version " + std::to_string(header.version()) + " (this weir reads " +
              std::to_string(kVersion) + ")";
    return r;
  }
  const size_t first = pos;
  uint64_t rows = 0;
  proto::TableBatch b;
  while (next_record(data, &pos, &rec, &r.error)) {
    if (!b.ParseFromArray(rec.data(), static_cast<int>(rec.size()))) {
      r.error = "a damaged record before byte " + std::to_string(pos);
      return r;
    }
    rows += static_cast<uint64_t>(b.rows_size());
  }
  if (!r.error.empty()) return r;
  if (rows != header.entries()) {
    r.error = "it holds " + std::to_string(rows) + " entries of the " +
              std::to_string(header.entries()) + " it announces";
    return r;
  }
  // Second pass: each entry with what is left of its life.
  const int64_t away = std::max<int64_t>(0, now.wall_ms - header.saved_wall_ms());
  pos = first;
  std::string ignored;
  while (next_record(data, &pos, &rec, &ignored)) {
    b.ParseFromArray(rec.data(), static_cast<int>(rec.size()));
    auto it = tables.find(b.table());
    if (it == tables.end()) continue;  // a table no longer configured
    proto::TableBatch live;
    live.set_table(b.table());
    live.set_kind(proto::TableBatch::SNAPSHOT);
    live.set_wall_ms(b.wall_ms());
    *live.mutable_columns() = b.columns();
    for (proto::Row& row : *b.mutable_rows()) {
      if (row.expire_in_ms() > 0) {
        const int64_t left = row.expire_in_ms() - away;
        if (left <= 0) {
          ++r.expired;
          continue;
        }
        row.set_expire_in_ms(left);
      }
      *live.add_rows() = std::move(row);
    }
    r.entries += stick::sync::apply(*it->second, live, now).rows;
  }
  if (servers) {
    for (const proto::ServerRecord& s : header.servers().records()) {
      servers->merge(s);
      ++r.servers;
    }
  }
  return r;
}

bool save_tables(const std::string& path, const Tables& tables, const stick::Now& now,
                 uint64_t* entries, std::string* error, const servers::Store* servers) {
  std::string body;
  uint64_t n = 0;
  for (const auto& [name, t] : tables) {
    stick::sync::write_all(*t, proto::TableBatch::SNAPSHOT, now, [&](const proto::TableBatch& b) {
      n += static_cast<uint64_t>(b.rows_size());
      put_record(&body, b.SerializeAsString());
    });
  }
  proto::StateHeader header;
  header.set_magic(std::string(kMagic));
  header.set_version(kVersion);
  header.set_saved_wall_ms(now.wall_ms);
  header.set_entries(n);
  if (servers) servers->all(header.mutable_servers());
  std::string out;
  put_record(&out, header.SerializeAsString());
  out += body;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t off = 0;
  while (off < out.size()) {
    const ssize_t w = ::write(fd, out.data() + off, out.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      *error = tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    *error = tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "rename to " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  *entries = n;
  return true;
}

std::optional<size_t> import_state_file(const std::string& path, servers::Store& servers,
                                        std::string* error) {
  std::string text;
  bool missing = false;
  if (!read_file(path, &text, &missing, error)) {
    if (missing) error->clear();
    return std::nullopt;
  }
  struct stat st {};
  const int64_t written_ms =
      ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) * 1000 : 1;
  proto::ServerStamp at;
  at.set_hlc(static_cast<uint64_t>(written_ms) << 16);
  size_t n = 0;
  const proto::StateHandover states = ipc::server_states_from_text(text);
  for (const proto::ServerState& s : states.servers()) {
    proto::ServerRecord r;
    r.set_backend(s.backend());
    r.set_server(s.server());
    r.set_admin_state(s.admin_state());
    *r.mutable_admin_at() = at;
    if (s.weight() != s.configured_weight()) {
      r.set_weight(s.weight());
      r.set_configured_weight(s.configured_weight());
      *r.mutable_weight_at() = at;
    }
    if (s.address() != s.configured_address()) {
      r.set_address(s.address());
      r.set_configured_address(s.configured_address());
      *r.mutable_address_at() = at;
    }
    servers.merge(r);
    ++n;
  }
  return n;
}

}  // namespace weir::peers
