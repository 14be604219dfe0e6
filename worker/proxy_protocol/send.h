#pragma once
// The send side of the PROXY protocol: the header weir writes first on a
// connection to a server whose `send_proxy` is set (traffic), or whose checks
// send one (`check_send_proxy`).

#include <string>

#include "common/base/address.h"
#include "common/config/config.h"
#include "worker/proxy_protocol/header.h"

struct ssl_st;

namespace weir::proxy_protocol {

// For a client connection: `client` and `local` (null: unknown) are the
// addresses weir serves it on (those a header in front named, if one came);
// `ssl` is the client's TLS once its handshake is done (null: plain);
// `received` the header the client connection started with (null: none), whose
// TLVs stand in for those weir does not have itself (ALPN and authority of a
// TLS the balancer ended, its TLS block, its unique id).
std::string header_for_client(const SendProxyConfig& cfg, const SockAddr& client,
                              const SockAddr* local, const ssl_st* ssl, const Header* received);

// The header version the server's health checks send (0: none): with
// check_send_proxy, traffic's version (v1 when traffic sends none); by default,
// traffic's when the check goes to the server's own address and port.
int check_version(const ServerConfig& server);

// For a health check's connection `fd` (connecting to `to`): v1 names the
// check's own addresses; v2 says LOCAL (the sender speaks for itself).
std::string header_for_check(int version, int fd, const SockAddr& to);

}  // namespace weir::proxy_protocol
