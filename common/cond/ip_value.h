#pragma once
// A socket address as the condition language compares it (IPv4 mapped into
// ::ffff:0:0/96): `src` and `dst` samples, `trusted` networks of accept_proxy.

#include "common/base/address.h"
#include "common/cond/fetch.h"

namespace weir::cond {

// False (and *out zeroed) for an address that is neither IPv4 nor IPv6.
bool ip_value_of(const SockAddr& a, IpValue* out);

}  // namespace weir::cond
