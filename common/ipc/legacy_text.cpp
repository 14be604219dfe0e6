#include "common/ipc/legacy_text.h"

#include <charconv>
#include <vector>

#include "common/base/hex.h"
#include "common/ipc/state_text.h"

namespace weir::ipc::legacy_text {
namespace {

// Splits on single spaces.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    size_t sp = line.find(' ');
    if (sp != 0) out.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return out;
}

template <typename T>
bool number(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "key=value" among space-separated words.
std::string_view field(std::string_view text, std::string_view key) {
  for (std::string_view w : words(text)) {
    if (w.size() > key.size() && w.substr(0, key.size()) == key && w[key.size()] == '=') {
      return w.substr(key.size() + 1);
    }
  }
  return {};
}

}  // namespace

bool decode(uint16_t type, std::string_view payload, proto::Envelope* out, std::string* error) {
  out->Clear();
  out->set_protocol(1);
  switch (type) {
    case kHello: {
      proto::Hello* h = out->mutable_hello();
      while (!payload.empty()) {
        size_t nl = payload.find('\n');
        std::string_view line = payload.substr(0, nl);
        payload.remove_prefix(nl == std::string_view::npos ? payload.size() : nl + 1);
        if (line.substr(0, 11) == "generation=") {
          int32_t g = 0;
          if (number(line.substr(11), &g)) h->set_generation(g);
        } else if (line.substr(0, 14) == "ticket_secret=") {
          std::optional<std::string> secret = from_hex(line.substr(14));
          if (!secret) {
            *error = "the master sent a ticket secret that is not hexadecimal";
            return false;
          }
          h->set_ticket_secret(*secret);
        }
      }
      return true;
    }
    case kConfig: {
      size_t nul = payload.find('\0');
      if (nul == std::string_view::npos) {
        *error = "a text configuration message without its source name";
        return false;
      }
      out->mutable_configuration()->set_source_name(std::string(payload.substr(0, nul)));
      out->mutable_configuration()->set_validated(std::string(payload.substr(nul + 1)));
      return true;
    }
    case kFdMap: {
      proto::ListenerMap* m = out->mutable_listener_map();
      while (!payload.empty()) {
        size_t nl = payload.find('\n');
        m->add_keys(std::string(payload.substr(0, nl)));
        payload.remove_prefix(nl == std::string_view::npos ? payload.size() : nl + 1);
      }
      return true;
    }
    case kReady: {
      proto::Ready* r = out->mutable_ready();
      int32_t pid = 0;
      uint32_t threads = 0;
      if (number(field(payload, "pid"), &pid)) r->set_pid(pid);
      if (number(field(payload, "threads"), &threads)) r->set_threads(threads);
      r->set_version(std::string(field(payload, "version")));
      return true;
    }
    case kDrain:
      out->mutable_drain();
      return true;
    case kStop:
      out->mutable_stop();
      return true;
    case kFailed:
      out->mutable_failed()->set_reason(std::string(payload));
      return true;
    case kCommand:
      out->mutable_command()->set_line(std::string(payload));
      return true;
    case kReply:
      out->mutable_reply()->set_text(std::string(payload));
      return true;
    case kState:
      *out->mutable_state() = server_states_from_text(payload);
      return true;
    default:
      // A type weir never had: the peer is not weir.
      *error = "a text message of unknown type " + std::to_string(type);
      return false;
  }
}

bool encode(const proto::Envelope& env, uint16_t* type, std::string* payload) {
  payload->clear();
  switch (env.body_case()) {
    case proto::Envelope::kHello:
      *type = kHello;
      *payload = "generation=" + std::to_string(env.hello().generation()) + "\n";
      if (!env.hello().ticket_secret().empty()) {
        *payload += "ticket_secret=" + to_hex(env.hello().ticket_secret()) + "\n";
      }
      return true;
    case proto::Envelope::kConfiguration:
      *type = kConfig;
      *payload = env.configuration().source_name();
      *payload += '\0';
      *payload += env.configuration().validated();
      return true;
    case proto::Envelope::kListenerMap:
      *type = kFdMap;
      for (const std::string& k : env.listener_map().keys()) *payload += k + "\n";
      return true;
    case proto::Envelope::kReady:
      *type = kReady;
      *payload = "pid=" + std::to_string(env.ready().pid()) +
                 " threads=" + std::to_string(env.ready().threads()) +
                 " version=" + env.ready().version();
      return true;
    case proto::Envelope::kDrain:
      *type = kDrain;
      return true;
    case proto::Envelope::kStop:
      *type = kStop;
      return true;
    case proto::Envelope::kFailed:
      *type = kFailed;
      *payload = env.failed().reason();
      return true;
    case proto::Envelope::kCommand:
      *type = kCommand;
      *payload = env.command().line();
      return true;
    case proto::Envelope::kReply:
      *type = kReply;
      *payload = env.reply().text();
      return true;
    case proto::Envelope::kState:
      *type = kState;
      *payload = server_states_to_text(env.state());
      return true;
    case proto::Envelope::kUpgradeState:
    case proto::Envelope::kDaemonStarted:
    case proto::Envelope::BODY_NOT_SET:
      break;
  }
  return false;
}

bool is_upgrade_state(std::string_view bytes) {
  return bytes.substr(0, 11) == "generation ";
}

bool decode_upgrade_state(std::string_view text, proto::UpgradeState* out, std::string* error) {
  out->Clear();
  proto::UpgradeState::Counts* counts = out->mutable_counts();
  // A line, or the `len` bytes after a "server_state LEN" / "config_bytes LEN" line.
  auto take_bytes = [&text](std::string_view len_word, std::string* to) {
    size_t len = 0;
    if (!number(len_word, &len) || len > text.size()) return false;
    to->assign(text.substr(0, len));
    text.remove_prefix(len);
    return true;
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::vector<std::string_view> w = words(line);
    if (w.empty()) continue;
    std::string_view kind = w[0];
    auto int_arg = [&w](int32_t* v) { return w.size() >= 2 && number(w[1], v); };
    int32_t v = 0;
    bool ok = true;
    if (kind == "generation") {
      if ((ok = int_arg(&v))) counts->set_newest(v);
    } else if (kind == "serving") {
      if ((ok = int_arg(&v))) counts->set_serving(v);
    } else if (kind == "reloads") {
      if ((ok = int_arg(&v))) counts->set_reloads(v);
    } else if (kind == "crash_streak") {
      if ((ok = int_arg(&v))) counts->set_crash_streak(v);
    } else if (kind == "crashes") {
      if ((ok = int_arg(&v))) counts->set_crashes(v);
    } else if (kind == "start_ms") {
      int64_t ms = 0;
      if ((ok = w.size() >= 2 && number(w[1], &ms))) out->set_start_ms(ms);
    } else if (kind == "pidfile") {
      if ((ok = w.size() >= 2)) out->set_pidfile(std::string(w[1]));
    } else if (kind == "listener") {
      proto::UpgradeState::Listener* l = out->add_listeners();
      ok = w.size() >= 3 && number(w[1], &v);
      l->set_fd(v);
      if (ok) l->set_key(std::string(w[2]));
    } else if (kind == "cli") {
      ok = w.size() >= 3 && number(w[1], &v);
      out->mutable_cli()->set_fd(v);
      if (ok) out->mutable_cli()->set_path(std::string(w[2]));
    } else if (kind == "waiter") {
      uint64_t id = 0;
      ok = w.size() >= 3 && number(w[1], &v) && number(w[2], &id);
      proto::UpgradeState::Waiter* wt = out->add_waiters();
      wt->set_fd(v);
      wt->set_id(id);
    } else if (kind == "worker") {
      // worker PID GENERATION CHANNEL_FD READY DRAINING STARTED_MS VERSION|-
      proto::UpgradeState::Worker* wk = out->add_workers();
      int32_t pid = 0, gen = 0, fd = -1, ready = 0, draining = 0;
      int64_t started = 0;
      ok = w.size() >= 8 && number(w[1], &pid) && number(w[2], &gen) && number(w[3], &fd) &&
           number(w[4], &ready) && number(w[5], &draining) && number(w[6], &started);
      wk->set_pid(pid);
      wk->set_generation(gen);
      wk->set_channel_fd(fd);
      wk->set_ready(ready == 1);
      wk->set_draining(draining == 1);
      wk->set_started_ms(started);
      if (w.size() >= 8 && w[7] != "-") wk->set_version(std::string(w[7]));
      wk->set_protocol(1);
    } else if (kind == "ticket_secret") {
      int32_t from_file = 0;
      std::optional<std::string> secret;
      ok = w.size() >= 3 && (secret = from_hex(w[1])) && number(w[2], &from_file);
      if (ok) {
        out->mutable_ticket_secret()->set_secret(*secret);
        out->mutable_ticket_secret()->set_from_file(from_file == 1);
      }
    } else if (kind == "server_state") {
      std::string states;
      if ((ok = w.size() >= 2 && take_bytes(w[1], &states))) {
        *out->mutable_server_state() = server_states_from_text(states);
      }
    } else if (kind == "config_bytes") {
      ok = w.size() >= 2 && take_bytes(w[1], out->mutable_config_bytes());
    }
    // Other words: a line this reader does not know, skipped.
    if (!ok) {
      *error = "unreadable line in the previous master's state: '" +
               std::string(line.substr(0, 80)) + "'";
      return false;
    }
  }
  if (counts->newest() <= 0) {
    *error = "the previous master's state names no generation";
    return false;
  }
  return true;
}

}  // namespace weir::ipc::legacy_text
