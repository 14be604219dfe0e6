// weir-origin: the test origin server as a standalone program (the demo application that
// scripts/run.sh puts behind weir).
//
//   weir-origin --listen HOST:PORT --name NAME
//   weir-origin --port PORT --name NAME          (listens on 127.0.0.1)
//
// Prints "weir-origin NAME listening on HOST:PORT" once ready; runs until SIGTERM/SIGINT.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/origin.h"

namespace {

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--listen HOST:PORT | --port PORT] [--name NAME]\n"
               "Runs the weir test origin server until SIGTERM/SIGINT.\n",
               argv0);
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string name = "origin";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string_view(argv[++i]);
    };
    if (arg == "-h" || arg == "--help") {
      usage(argv[0]);
      return 0;
    }
    auto v = value();
    if (!v) {
      usage(argv[0]);
      return 2;
    }
    if (arg == "--listen") {
      size_t colon = v->rfind(':');
      auto p = colon == std::string_view::npos ? std::nullopt : parse_port(v->substr(colon + 1));
      if (!p) {
        std::fprintf(stderr, "weir-origin: bad --listen '%.*s' (want HOST:PORT)\n",
                     static_cast<int>(v->size()), v->data());
        return 2;
      }
      host = std::string(v->substr(0, colon));
      port = *p;
    } else if (arg == "--port") {
      auto p = parse_port(*v);
      if (!p) {
        std::fprintf(stderr, "weir-origin: bad --port '%.*s'\n", static_cast<int>(v->size()),
                     v->data());
        return 2;
      }
      port = *p;
    } else if (arg == "--name") {
      name = std::string(*v);
    } else {
      usage(argv[0]);
      return 2;
    }
  }

  // Block the stop signals before any thread starts, then wait for them synchronously.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    weir::test::OriginServer origin(name, port, host);
    std::printf("weir-origin %s listening on %s:%u\n", name.c_str(), host.c_str(),
                static_cast<unsigned>(origin.port()));
    std::fflush(stdout);
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    origin.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weir-origin: %s\n", e.what());
    return 1;
  }
  return 0;
}
