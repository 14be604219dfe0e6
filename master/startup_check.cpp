#include "master/startup_check.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weir {
namespace {

// "user 'weir'" (or "uid 998"): who the checks are made for.
std::string this_user() {
  const uid_t uid = geteuid();
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found) {
    return "user '" + std::string(pw.pw_name) + "'";
  }
  return "uid " + std::to_string(uid);
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Why this process cannot make a new entry at `path` ("" when it can).
std::string create_problem(const std::string& path) {
  const std::string dir = parent_dir(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return "the directory " + dir + " does not exist: create it (mkdir -p " + dir +
             ") or choose another path";
    }
    return "cannot reach the directory " + dir + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
  // AT_EACCESS: the effective identity, as open() and bind() will use it.
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    const int err = errno;  // this_user() may change errno
    return "cannot create " + path + ": the directory " + dir + " is not writable by " +
           this_user() + " (" + std::strerror(err) + ")";
  }
  return "";
}

// An access-log file: written if it exists, created in its directory if not.
std::string log_file_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return create_problem(path);
    return "cannot reach " + path + ": " + std::strerror(errno);
  }
  if (S_ISDIR(st.st_mode)) return path + " is a directory; give the path of a file";
  if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) {
    const int err = errno;  // this_user() may change errno
    return "cannot write " + path + " as " + this_user() + ": " + std::strerror(err);
  }
  return "";
}

// A Unix socket the master binds: a socket left by an earlier run is replaced,
// anything else at that path is not touched.
std::string socket_problem(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return "the path is too long for a Unix socket (" + std::to_string(path.size()) +
           " bytes; at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")";
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    return path + " exists and is not a socket; weir does not replace it: remove it or " +
           "choose another path";
  }
  return create_problem(path);
}

}  // namespace

void check_startup_environment(const Config& cfg, const StartupCheckOptions& opts,
                               std::vector<ConfigError>* errors,
                               std::vector<ConfigError>* warnings) {
  const auto report = [&](std::vector<ConfigError>* to, const SourceMark& mark,
                          const std::string& label, const std::string& problem) {
    if (!problem.empty()) to->push_back({cfg.source_name, mark.line, mark.column, label + problem});
  };
  for (const LogSink& sink : cfg.global.logs) {
    if (sink.target == LogTarget::kFile) {
      report(errors, sink.mark, "global: log: ", log_file_problem(sink.path));
    }
  }
  for (const RuntimeApiEndpoint& ep : cfg.global.runtime_api) {
    if (ep.path.empty() || opts.bound_sockets.count(ep.path)) continue;
    report(errors, ep.mark, "global: runtime_api: ", socket_problem(ep.path));
  }
  if (!opts.reload) {
    if (!opts.master_socket.empty()) {
      // From the command line: no position in the file.
      const std::string problem = socket_problem(opts.master_socket);
      if (!problem.empty()) errors->push_back({"-S " + opts.master_socket, 0, 0, problem});
    } else if (!cfg.global.master_socket.empty()) {
      report(errors, cfg.global.master_socket_mark,
             "global: master_socket: ", socket_problem(cfg.global.master_socket));
    }
    // A pid file that cannot be written is a warning at start, as here.
    const std::string suffix = "; the pid file will not be written";
    if (!opts.pidfile.empty()) {
      const std::string problem = log_file_problem(opts.pidfile);
      if (!problem.empty()) warnings->push_back({"-p " + opts.pidfile, 0, 0, problem + suffix});
    } else if (!cfg.global.pidfile.empty()) {
      const std::string problem = log_file_problem(cfg.global.pidfile);
      if (!problem.empty()) {
        report(warnings, cfg.global.pidfile_mark, "global: pidfile: ", problem + suffix);
      }
    }
  }
  // Written aside and renamed over: the directory must take new files.
  if (!cfg.global.state_file.empty() && !cfg.global.state_dir.empty()) {
    report(warnings, cfg.global.state_file_mark, "global: state_file: ",
           "state_dir keeps the server states now; the agent imports this file once, and it is "
           "no longer written: remove state_file once weir has run with state_dir "
           "(doc/management.md, \"Migrating from global.state_file\")");
  } else if (!cfg.global.state_file.empty()) {
    const std::string problem = create_problem(cfg.global.state_file);
    if (!problem.empty()) {
      report(warnings, cfg.global.state_file_mark,
             "global: state_file: ", problem + "; server states will not be kept across restarts");
    }
  }
  if (!cfg.global.state_dir.empty()) {
    const std::string problem = create_problem(cfg.global.state_dir + "/tables.state");
    if (!problem.empty()) {
      report(warnings, cfg.global.state_dir_mark, "global: state_dir: ",
             problem + "; stick tables and server states will not be kept across restarts");
    }
  }
}

}  // namespace weir
