// Fetches of the client connection's addresses: src, src_port, dst, dst_port.
// Each runs on the SampleSource that called it (SampleSource::of).

#include <netinet/in.h>

#include <cstring>

#include "common/base/registry.h"
#include "common/cond/ip_value.h"
#include "worker/rules/rules.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches

void push_address(const SockAddr* a, std::vector<Sample>& out) {
  if (!a) return;
  Sample s;
  s.set_owned(a->host_string());
  s.type = Type::kIp;
  ip_value_of(*a, &s.ip);
  out.push_back(std::move(s));
}

void push_port(const SockAddr* a, std::vector<Sample>& out) {
  if (a) push_number(out, a->port());
}

void src(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_address(SampleSource::of(c).src, out);
}
void src_port(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_port(SampleSource::of(c).src, out);
}
void dst(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_address(SampleSource::of(c).local(), out);
}
void dst_port(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_port(SampleSource::of(c).local(), out);
}

constexpr FetchScope kConn = FetchScope::kConnection;
constexpr FetchDef kConnFetches[] = {
    {"src", Type::kIp, kConn, FetchArg::kNone, false, src},
    {"src_port", Type::kInt, kConn, FetchArg::kNone, false, src_port},
    {"dst", Type::kIp, kConn, FetchArg::kNone, false, dst},
    {"dst_port", Type::kInt, kConn, FetchArg::kNone, false, dst_port},
};
const Registrar<FetchDef> kRegister(kConnFetches);

}  // namespace
}  // namespace weir
