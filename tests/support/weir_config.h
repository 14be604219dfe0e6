#pragma once
// Builds small weir configurations for the integration tests: one frontend on a
// free port in front of one backend, with the knobs tests turn most often.

#include <cstdint>
#include <string>
#include <vector>

namespace weir::test {

struct ProxySpec {
  std::string mode = "http";         // http | tcp
  std::vector<std::string> servers;  // "127.0.0.1:PORT" each, named s1, s2, ...
  std::vector<int> weights;          // optional, same order as servers
  uint16_t port = 0;                 // 0: pick a free one (read it back from .port)
  int threads = 2;
  int retries = 3;
  bool forwardfor = false;
  std::string log_format = "text";  // access log to stdout
  std::string frontend_timeouts;    // YAML flow map body, e.g. "client: 2s"
  std::string frontend_extra;       // extra lines inside the frontend (indented 4 spaces)
  std::string bind_options;         // entries of the bind's map, e.g. "accept_proxy: true"
  std::string backend_timeouts;     // e.g. "server: 1s, connect: 1s"
  std::string global_extra;         // extra lines inside global: (indented 2 spaces)
  std::string logs;                 // replaces the value of global.log when set (YAML flow)
  std::string backend_extra;        // extra lines inside the backend (indented 4 spaces)
  std::string server_options;       // extra entries of every server's map, e.g. "maxconn: 1"
};

// Returns the YAML and fills spec.port when it was 0.
std::string proxy_yaml(ProxySpec& spec);

}  // namespace weir::test
