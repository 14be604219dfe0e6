#include "tests/support/weir_config.h"

#include "tests/support/util.h"

namespace weir::test {

std::string proxy_yaml(ProxySpec& spec) {
  if (spec.port == 0) spec.port = free_tcp_port();
  std::string y;
  y += "global:\n";
  y += "  threads: " + std::to_string(spec.threads) + "\n";
  y += "  log: " +
       (spec.logs.empty() ? "[{target: stdout, format: " + spec.log_format + "}]" : spec.logs) +
       "\n";
  y += spec.global_extra;
  y += "frontends:\n";
  y += "  fe:\n";
  y += "    mode: " + spec.mode + "\n";
  if (spec.bind_options.empty()) {
    y += "    bind: [\"127.0.0.1:" + std::to_string(spec.port) + "\"]\n";
  } else {
    y += "    bind: [{address: \"127.0.0.1:" + std::to_string(spec.port) + "\", " +
         spec.bind_options + "}]\n";
  }
  y += "    default_backend: be\n";
  y += std::string("    forwardfor: ") + (spec.forwardfor ? "true" : "false") + "\n";
  if (!spec.frontend_timeouts.empty()) y += "    timeouts: {" + spec.frontend_timeouts + "}\n";
  y += spec.frontend_extra;
  y += "backends:\n";
  y += "  be:\n";
  y += "    mode: " + spec.mode + "\n";
  y += "    retries: " + std::to_string(spec.retries) + "\n";
  if (!spec.backend_timeouts.empty()) y += "    timeouts: {" + spec.backend_timeouts + "}\n";
  y += spec.backend_extra;
  y += "    servers:\n";
  for (size_t i = 0; i < spec.servers.size(); ++i) {
    y += "      s" + std::to_string(i + 1) + ": {address: \"" + spec.servers[i] + "\"";
    if (i < spec.weights.size()) y += ", weight: " + std::to_string(spec.weights[i]);
    if (!spec.server_options.empty()) y += ", " + spec.server_options;
    y += "}\n";
  }
  return y;
}

}  // namespace weir::test
