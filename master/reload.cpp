// Reloads: the new configuration is validated first (a bad one changes
// nothing), then generation N+1 starts on the same sockets; the reload is over
// when it says READY (generation N then drains) or fails (N keeps serving and
// the configuration and sockets go back to N's). A reload asked for during
// another is run once right after it. doc/management.md, "Reloads".

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/base/build_id.h"
#include "common/base/log.h"
#include "common/tls/tls_context.h"
#include "master/cli/command.h"
#include "master/master.h"
#include "master/sd_notify.h"
#include "master/startup_check.h"

namespace weir {
namespace {

// The message of the first "[error]" line of a captured log ("" when none).
std::string first_error_line(const std::string& text) {
  size_t pos = text.find("[error]");
  if (pos == std::string::npos) return "";
  size_t colon = text.find("]: ", pos + 7);
  size_t eol = text.find('\n', pos);
  if (colon == std::string::npos || colon > eol) return "";
  return text.substr(colon + 3, eol - colon - 3);
}

}  // namespace

bool Master::load_config(Config* out, std::string* bytes) {
  std::ifstream in(opts_.config_path, std::ios::binary);
  if (!in) {
    log::error("%s: cannot open: %s", opts_.config_path.c_str(), std::strerror(errno));
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  *bytes = ss.str();
  // Validate the exact bytes that the worker will receive, so an edit to the file
  // in the middle of a reload cannot make master and worker disagree.
  LoadResult r = load_config_text(*bytes, opts_.config_path);
  // Certificates, keys, CAs: a reload whose new ones do not load is refused here,
  // before any worker starts, and the running generation goes on.
  if (r.config) {
    tls::check_config(*r.config, &r.errors, &r.warnings);
    // What start-up needs from the machine (log and socket directories): a reload
    // that would fail there is refused here, with the key to blame.
    StartupCheckOptions startup;
    startup.master_socket = opts_.master_socket;
    startup.pidfile = opts_.pidfile;
    startup.reload = generations_.newest() > 0;
    for (const auto& [key, sock] : listeners_) {
      if (key.rfind("unix:", 0) == 0) startup.bound_sockets.insert(key.substr(5));
    }
    check_startup_environment(*r.config, startup, &r.errors, &r.warnings);
  }
  for (const ConfigMessage& m : in_file_order(r.errors, r.warnings)) {
    if (m.warning) {
      log::warning("%s", m.text.c_str());
    } else {
      log::error("%s", m.text.c_str());
    }
  }
  if (!r.config || !r.errors.empty()) return false;
  std::string error;
  if (!ticket_secret_.update(r.config->global.tls_ticket_secret_file, &error)) {
    log::error("global: tls_ticket_secret_file: %s", error.c_str());
    return false;
  }
  *out = std::move(*r.config);
  return true;
}

std::optional<std::string> Master::start_reload(uint64_t waiter) {
  if (stopping_) return std::string("Success=0\n--\nthe master is stopping\n");
  if (generations_.reloading()) {
    // Coalesce: one more reload after the current one, never two at once.
    reload_pending_ = true;
    if (waiter) pending_waiters_.push_back(waiter);
    log::notice("reload requested while one is in progress; it will follow");
    return std::nullopt;
  }
  // A state change the serving worker reported a moment ago (a server just
  // marked DOWN, say) may still sit unread in its channel: take it in before
  // the new generation is handed the server states.
  absorb_worker_messages();
  capture_ = true;
  if (!carry_log_) startup_log_.clear();
  carry_log_ = false;
  if (!running_id_.empty()) {
    std::string on_disk = executable_id(opts_.binary);
    if (!on_disk.empty() && on_disk != running_id_) {
      log::notice("the binary %s changed (%s -> %s): the master re-executes itself first",
                  opts_.binary.c_str(), running_id_.c_str(), on_disk.c_str());
      std::vector<uint64_t> waiters;
      if (waiter) waiters.push_back(waiter);
      reexec(waiters);  // returns only on failure; then reload with the running master
    }
  }
  generations_.count_reload();
  sd::notify("RELOADING=1\n" + sd::monotonic_usec() + "\nSTATUS=reloading");
  log::notice("reloading configuration from %s", opts_.config_path.c_str());
  Config next;
  std::string bytes;
  if (!load_config(&next, &bytes)) {
    log::error("reload failed: the configuration is invalid; generation %d keeps serving",
               generations_.serving());
    return finish_reload(false, waiter);
  }
  if (!apply_fd_limit(next)) {
    log::error("reload failed: the open-file limit is too low; generation %d keeps serving",
               generations_.serving());
    return finish_reload(false, waiter);
  }
  std::map<std::string, ListenSocket> next_listeners;
  if (!open_listeners(next, &next_listeners)) {
    log::error("reload failed: cannot open listeners; generation %d keeps serving",
               generations_.serving());
    return finish_reload(false, waiter);
  }
  // Sockets that disappeared stay open until the new generation is ready.
  for (auto& [k, v] : listeners_) retiring_listeners_[k] = std::move(v);
  listeners_ = std::move(next_listeners);
  rollback_config_ = std::move(config_);
  rollback_bytes_ = std::move(config_bytes_);
  config_ = std::move(next);
  config_bytes_ = std::move(bytes);
  send_peers_configuration();
  generations_.reload_started(now_ms());
  const int generation = generations_.begin_generation();
  if (!spawn_worker(generation)) {
    log::error("reload failed: cannot start generation %d; generation %d keeps serving", generation,
               generations_.serving());
    // Answered here, as for an invalid configuration: the CLI client waiting
    // for this command is not in reload_waiters_ (answering it from there,
    // inside its own command, left its connection open for ever).
    return finish_reload(false, waiter);
  }
  if (waiter) reload_waiters_.push_back(waiter);
  return std::nullopt;
}

std::optional<std::string> Master::finish_reload(bool ok, uint64_t immediate_waiter,
                                                 const std::string& reason) {
  if (!ok && generations_.reloading()) {
    // Back to the configuration and sockets that the serving generation runs with.
    for (auto& [k, v] : retiring_listeners_) listeners_[k] = std::move(v);
    retiring_listeners_.clear();
    config_ = std::move(rollback_config_);
    config_bytes_ = std::move(rollback_bytes_);
    std::map<std::string, ListenSocket> restored;
    open_listeners(config_, &restored);
    listeners_ = std::move(restored);  // sockets only the failed configuration had are closed
    send_peers_configuration();        // the agent's tables as the serving generation has them
  }
  generations_.reload_over();
  capture_ = false;
  last_startup_log_ = startup_log_;
  std::string answer = std::string(ok ? "Success=1" : "Success=0") + "\n--\n" + startup_log_;
  if (ok) {
    sd::notify("READY=1\nSTATUS=generation " + std::to_string(generations_.serving()) + " serving");
  } else {
    sd::notify("READY=1\nSTATUS=reload failed: " +
               (reason.empty() ? first_error_line(startup_log_) : reason) + "; generation " +
               std::to_string(generations_.serving()) + " serving");
  }
  std::vector<uint64_t> waiters;
  waiters.swap(reload_waiters_);
  for (uint64_t id : waiters) cli_->answer(id, answer);
  if (reload_pending_) {
    reload_pending_ = false;
    std::vector<uint64_t> next_waiters;
    next_waiters.swap(pending_waiters_);
    answer_or_wait(start_reload(0), next_waiters);
  }
  if (immediate_waiter) return answer;
  return std::nullopt;
}

void Master::answer_or_wait(const std::optional<std::string>& answer,
                            const std::vector<uint64_t>& waiters) {
  for (uint64_t id : waiters) {
    if (answer) {
      cli_->answer(id, *answer);
    } else {
      reload_waiters_.push_back(id);
    }
  }
}

namespace {

constexpr MasterCommand kReloadCommands[] = {
    {"reload",
     "reload             reload the configuration; answers Success=1 or Success=0, then the\n"
     "                   log lines of the reload after a \"--\" line\n",
     [](Master& m, CliClient& client, std::string_view) { return m.start_reload(client.id()); }},
    {"show startup-logs", "show startup-logs  the log lines of the last start or reload\n",
     [](Master& m, CliClient&, std::string_view) -> std::optional<std::string> {
       return m.last_startup_log();
     }},
};
const Registrar<MasterCommand> kRegisterReloadCommands(kReloadCommands);

}  // namespace
}  // namespace weir
