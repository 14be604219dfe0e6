// The runtime-API command on TLS: `show ssl certs` (doc/tls.md).

#include <ctime>

#include "common/tls/tls_context.h"
#include "worker/api/command.h"
#include "worker/worker.h"

namespace weir {
namespace {

// Every certificate the TLS binds serve, with what an operator checks first.
std::string show_ssl_certs(Worker& w, const ApiArgs&) {
  std::string out;
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auto date = [](int64_t t) {
    char buf[32];
    time_t tt = static_cast<time_t>(t);
    tm tmv{};
    gmtime_r(&tt, &tmv);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return std::string(buf);
  };
  for (const auto& t : w.tls_fronts()) {
    for (const tls::CertInfo& c : t.ctx->certs()) {
      std::string sans;
      for (const std::string& n : c.names) sans += (sans.empty() ? "" : ",") + n;
      out += "frontend: " + t.fe->name() + "\n";
      out += "file: " + c.file + "\n";
      out += "key: " + c.key_type + "\n";
      out += "subject: " + c.subject + "\n";
      out += "sans: " + sans + "\n";
      out += "issuer: " + c.issuer + "\n";
      out += "serial: " + c.serial + "\n";
      out += "not_before: " + date(c.not_before) + "\n";
      out += "not_after: " + date(c.not_after) + "\n";
      out += "expires_in: " + std::to_string(c.not_after - now) + "s" +
             (c.not_after < now ? " (expired)" : "") + "\n\n";
    }
  }
  if (out.empty()) return "No TLS certificate is loaded (no bind has tls:).";
  out.pop_back();
  return out;
}

constexpr ApiCommand kTlsCommands[] = {
    {"show ssl certs", ApiLevel::kUser,
     "show ssl certs     every served certificate: file, subject, SANs, issuer, expiry",
     show_ssl_certs},
};
const Registrar<ApiCommand> kRegisterTlsCommands(kTlsCommands);

}  // namespace
}  // namespace weir
