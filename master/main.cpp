// weir: command line entry point. Dispatches to the master (default), the
// configuration check (-c), the version report (-v) or, when started by the
// master, a worker (--worker FD).

#include <google/protobuf/stubs/common.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/base/version.h"
#include "common/config/config.h"
#include "common/tls/tls_context.h"
#include "master/master.h"
#include "master/startup_check.h"
#include "peers/agent.h"
#include "worker/worker.h"

#ifdef WEIR_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace {

constexpr const char* kDefaultConfig = "/etc/weir/weir.yaml";

void usage(FILE* out) {
  std::fprintf(out,
               "Usage: weir [-f FILE] [-c] [-D] [-p PIDFILE] [-S SOCKET] [-v] [-h]\n"
               "  -f FILE     configuration file (default %s)\n"
               "  -c          check the configuration and exit (0: valid, 1: errors)\n"
               "  -D          run in the background; return once the first worker is ready\n"
               "              (or print why start-up failed and exit 1)\n"
               "  -p PIDFILE  write the master's pid to PIDFILE (overrides global.pidfile)\n"
               "  -S SOCKET   serve the master CLI on this Unix socket (overrides\n"
               "              global.master_socket)\n"
               "  -v          print the version of weir and of the libraries it uses\n"
               "  -h          this help\n",
               kDefaultConfig);
}

void print_version() {
  std::printf("weir %s\n", weir::version());
  std::printf("  OpenSSL:  %s\n", OpenSSL_version(OPENSSL_VERSION));
  std::printf("  yaml-cpp: %s\n", WEIR_YAML_CPP_VERSION);
  char pcre[64] = "";
  pcre2_config(PCRE2_CONFIG_VERSION, pcre);
  uint32_t jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &jit);
  std::printf("  PCRE2:    %s%s\n", pcre, jit ? " (JIT)" : "");
  std::printf("  Protobuf: %s (messages between processes: protocol %u)\n",
              google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION).c_str(),
              weir::ipc::kProtocolVersion);
#ifdef WEIR_HAVE_JEMALLOC
  const char* jv = nullptr;
  size_t len = sizeof jv;
  if (mallctl("version", &jv, &len, nullptr, 0) == 0 && jv) {
    std::printf("  jemalloc: %s\n", jv);
  } else {
    std::printf("  jemalloc: %s\n", JEMALLOC_VERSION);
  }
#else
  std::printf("  jemalloc: not linked (sanitizer build)\n");
#endif
  std::printf("  compiler: %s %s\n",
#ifdef __clang__
              "clang",
#else
              "g++",
#endif
              __VERSION__);
}

// The absolute path of this executable as it was started, resolved now, so that a
// package upgrade followed by a reload execs the new binary at the same path.
std::string resolve_binary(const char* argv0) {
  char buf[PATH_MAX];
  if (std::strchr(argv0, '/')) {
    if (realpath(argv0, buf)) return buf;
  } else if (const char* path = getenv("PATH")) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      size_t colon = p.find(':', start);
      std::string dir =
          p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      std::string candidate = (dir.empty() ? "." : dir) + "/" + argv0;
      if (access(candidate.c_str(), X_OK) == 0 && realpath(candidate.c_str(), buf)) return buf;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  return argv0;
}

// weir -c: the loader's checks, then the files TLS reads and what start-up needs
// from the machine; every message in file order, then one line with the verdict.
int check_config(const weir::MasterOptions& opts) {
  const std::string& path = opts.config_path;
  weir::LoadResult r = weir::load_config_file(path);
  if (r.config) {
    weir::tls::check_config(*r.config, &r.errors, &r.warnings);
    weir::StartupCheckOptions startup;
    startup.master_socket = opts.master_socket;
    startup.pidfile = opts.pidfile;
    weir::check_startup_environment(*r.config, startup, &r.errors, &r.warnings);
  }
  for (const weir::ConfigMessage& m : weir::in_file_order(r.errors, r.warnings)) {
    std::fprintf(stderr, "%s\n", m.text.c_str());
  }
  if (!r.errors.empty()) {
    std::fprintf(stderr, "Configuration file is not valid: %s (%zu error%s)\n", path.c_str(),
                 r.errors.size(), r.errors.size() == 1 ? "" : "s");
    return 1;
  }
  std::printf("Configuration file is valid: %s\n", path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--worker") == 0) {
    return weir::worker_main(std::atoi(argv[2]));
  }
  if (argc == 3 && std::strcmp(argv[1], "--peers") == 0) {
    return weir::peers::peers_main(std::atoi(argv[2]));
  }
  // A developer option, left out of -h: the loader's key tables as JSON, which
  // scripts/check-schema.py compares with doc/weir.schema.json (doc/testing.md).
  if (argc == 2 && std::strcmp(argv[1], "--dump-config-keys") == 0) {
    std::fputs(weir::config_keys_json().c_str(), stdout);
    return 0;
  }
  weir::MasterOptions opts;
  opts.config_path = kDefaultConfig;
  // --master-state FD: a master replacing itself during a binary upgrade.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--master-state") == 0) {
      opts.state_fd = std::atoi(argv[i + 1]);
      for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  bool check = false;
  int opt;
  while ((opt = getopt(argc, argv, "f:cDp:S:vVh")) != -1) {
    switch (opt) {
      case 'f':
        opts.config_path = optarg;
        break;
      case 'c':
        check = true;
        break;
      case 'D':
        opts.daemonize = true;
        break;
      case 'p':
        opts.pidfile = optarg;
        break;
      case 'S':
        opts.master_socket = optarg;
        break;
      case 'v':
      case 'V':
        print_version();
        return 0;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "weir: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (check) return check_config(opts);
  opts.binary = resolve_binary(argv[0]);
  if (!opts.pidfile.empty() && opts.pidfile[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) opts.pidfile = std::string(cwd) + "/" + opts.pidfile;
  }
  weir::Master master(opts);
  return master.run();
}
