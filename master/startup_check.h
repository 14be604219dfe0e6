#pragma once
// What start-up needs from the machine, checked without side effects, so that a
// configuration `weir -c` accepts also starts: the directories of the access-log
// files and of the Unix sockets exist and this process may create files in them,
// a log file that exists can be written, a socket path is not taken by something
// else. `weir -c` runs it, and the master before each start and reload, so the
// answer is a file:line:column error before any worker is started.
//
// The checks are made for the user running them: run `weir -c` as the user that
// starts weir (root under systemd). Things only the start can tell (a port in use,
// a syslog server with no route) are reported then (doc/operations.md).

#include <set>
#include <string>
#include <vector>

#include "common/config/config.h"

namespace weir {

struct StartupCheckOptions {
  // -S: the master CLI socket, overriding global.master_socket.
  std::string master_socket;
  // -p: the pid file, overriding global.pidfile.
  std::string pidfile;
  // A reload: the master CLI socket and the pid file are not made again, and
  // `bound_sockets` (Unix socket paths the master already listens on) are kept.
  bool reload = false;
  std::set<std::string> bound_sockets;
};

// Appends what would make the start fail to `errors` and what would only make a
// feature fail (the pid file, the state file) to `warnings`, at the key that names it.
void check_startup_environment(const Config& cfg, const StartupCheckOptions& opts,
                               std::vector<ConfigError>* errors,
                               std::vector<ConfigError>* warnings);

}  // namespace weir
