// weirctl: sends a command to weir's runtime API (-s, default
// /run/weir/admin.sock) or master CLI (-m, default /run/weir/master.sock) and
// prints the answer. With no command, reads commands from standard input, one
// per line, with a prompt when it is a terminal.
//
// Exit status: 0 when the command succeeded, 1 when weir refused it or reported
// an error, 2 when weir could not be reached or the usage is wrong.

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <fcntl.h>

#include "common/base/address.h"
#include "common/base/curve_keys.h"
#include "common/base/fd.h"

namespace {

constexpr const char* kDefaultApi = "/run/weir/admin.sock";
constexpr const char* kDefaultMaster = "/run/weir/master.sock";

void usage(FILE* out) {
  std::fprintf(out,
               "Usage: weirctl [-s SOCKET | -m SOCKET] [--json] [COMMAND...]\n"
               "  -s SOCKET  runtime API: a Unix socket path or HOST:PORT (default %s)\n"
               "  -m SOCKET  master CLI instead (default %s)\n"
               "  --json     ask for JSON output where the command has it\n"
               "With no COMMAND, commands are read from standard input, one per line.\n"
               "weirctl peers keygen [FILE]: a new CURVE key pair for a node of a cluster;\n"
               "  writes FILE (mode 0600, never over an existing file) and prints the public key,\n"
               "  or without FILE prints both (doc/peers.md).\n"
               "Exit status: 0 success, 1 refused or failed, 2 weir not reachable.\n",
               kDefaultApi, kDefaultMaster);
}

weir::UniqueFd connect_to(const std::string& target, std::string* error) {
  if (!target.empty() && target[0] == '/') {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (target.size() >= sizeof addr.sun_path) {
      *error = "socket path too long";
      return {};
    }
    std::memcpy(addr.sun_path, target.data(), target.size());
    weir::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *error = std::strerror(errno);
      return {};
    }
    return fd;
  }
  std::string why;
  auto addr = weir::parse_address(target, false, &why);
  if (!addr) {
    *error = why;
    return {};
  }
  weir::UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), addr->sa(), addr->len) != 0) {
    *error = std::strerror(errno);
    return {};
  }
  return fd;
}

// Sends one command; fills *answer with what weir says (without the final empty
// line). Returns false when weir could not be reached.
bool exchange(const std::string& target, const std::string& command, std::string* answer,
              std::string* error) {
  weir::UniqueFd fd = connect_to(target, error);
  if (!fd) return false;
  std::string line = command + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      *error = std::strerror(errno);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer->append(buf, static_cast<size_t>(n));
  }
  while (answer->size() >= 2 && answer->compare(answer->size() - 2, 2, "\n\n") == 0) {
    answer->pop_back();
  }
  // An empty answer is the empty line alone: nothing to print.
  if (*answer == "\n") answer->clear();
  return true;
}

bool is_failure(const std::string& answer) {
  return answer.rfind("Error:", 0) == 0 || answer.rfind("Unknown command", 0) == 0 ||
         answer.rfind("Success=0", 0) == 0;
}

}  // namespace

// `weirctl peers keygen [FILE]`: no weir needed.
int keygen(int argc, char** argv) {
  if (argc > 4) {
    std::fprintf(stderr, "weirctl: usage: weirctl peers keygen [FILE]\n");
    return 2;
  }
  auto pair = weir::curve::generate();
  if (!pair) {
    std::fprintf(stderr, "weirctl: this libzmq cannot make CURVE keys (built without CURVE)\n");
    return 1;
  }
  const std::string text = weir::curve::secret_file_text(*pair);
  if (argc < 4) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  const char* path = argv[3];
  weir::UniqueFd fd(::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    std::fprintf(stderr, "weirctl: cannot create %s: %s\n", path, std::strerror(errno));
    return 1;
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd.get()) != 0) {
    std::fprintf(stderr, "weirctl: cannot write %s: %s\n", path, std::strerror(errno));
    ::unlink(path);
    return 1;
  }
  std::printf("public_key: \"%s\"\n", pair->public_key.c_str());
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "peers" && std::string(argv[2]) == "keygen") {
    return keygen(argc, argv);
  }
  std::string target = kDefaultApi;
  bool json = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-s" || a == "-m") && i + 1 < argc) {
      target = argv[++i];
    } else if (a == "-m") {
      target = kDefaultMaster;
    } else if (a == "--json") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "weirctl: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    } else {
      break;
    }
  }
  std::string command;
  for (; i < argc; ++i) {
    if (!command.empty()) command += ' ';
    command += argv[i];
  }
  if (!command.empty()) {
    if (json) command += " json";
    std::string answer, error;
    if (!exchange(target, command, &answer, &error)) {
      std::fprintf(stderr, "weirctl: cannot reach %s: %s\n", target.c_str(), error.c_str());
      return 2;
    }
    std::fwrite(answer.data(), 1, answer.size(), stdout);
    if (!answer.empty() && answer.back() != '\n') std::fputc('\n', stdout);
    return is_failure(answer) ? 1 : 0;
  }
  // Interactive (or scripted through standard input).
  bool tty = isatty(STDIN_FILENO);
  int status = 0;
  std::string line;
  for (;;) {
    if (tty) {
      std::fputs("weir> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "quit" || line == "exit") break;
    std::string answer, error;
    if (!exchange(target, line, &answer, &error)) {
      std::fprintf(stderr, "weirctl: cannot reach %s: %s\n", target.c_str(), error.c_str());
      return 2;
    }
    std::fwrite(answer.data(), 1, answer.size(), stdout);
    if (!answer.empty() && answer.back() != '\n') std::fputc('\n', stdout);
    if (is_failure(answer)) status = 1;
  }
  return status;
}
