#include "master/state_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/base/log.h"
#include "master/cli/command.h"
#include "master/master.h"

namespace weir {

void StateFile::write(const std::string& path, const std::string& states) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = f != nullptr;
  if (f) {
    ok = std::fwrite(states.data(), 1, states.size(), f) == states.size();
    ok = std::fclose(f) == 0 && ok;
    ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  }
  if (!ok) {
    const int err = errno;
    ::unlink(tmp.c_str());  // what was written of it takes room the next try needs
    ++failed_;
    last_error_ = std::strerror(err);
    if (!failing_) {
      failing_ = true;
      log::warning(
          "cannot write state file %s: %s; the server states stay in memory and are written "
          "again at the next change (master CLI: show state-file)",
          path.c_str(), std::strerror(err));
    }
    return;
  }
  ++written_;
  if (failing_) {
    failing_ = false;
    log::notice("state file %s written again (%llu failed write(s) so far)", path.c_str(),
                static_cast<unsigned long long>(failed_));
  }
}

std::optional<std::string> StateFile::read(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string StateFile::describe(const std::string& path) const {
  if (path.empty()) return "No state file (global.state_file is not set).";
  return "path: " + path + "\nwrites: " + std::to_string(written_) +
         "\nfailed: " + std::to_string(failed_) +
         "\nlast_error: " + (last_error_.empty() ? "-" : last_error_) +
         "\nstate: " + (failing_ ? "failing" : "ok") + "\n";
}

std::string Master::show_state_file() const {
  return state_file_.describe(config_.global.state_file);
}

namespace {

constexpr MasterCommand kStateFileCommands[] = {
    {"show state-file",
     "show state-file    global.state_file: path, writes, failed writes, last error\n",
     [](Master& m, CliClient&, std::string_view) -> std::optional<std::string> {
       return m.show_state_file();
     }},
};
const Registrar<MasterCommand> kRegisterStateFileCommands(kStateFileCommands);

}  // namespace
}  // namespace weir
