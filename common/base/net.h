#pragma once
// Small socket helpers shared by the master (listeners) and the workers
// (accepted and outgoing connections).

#include <string>

#include "common/base/address.h"
#include "common/base/fd.h"

namespace weir::net {

bool set_nonblocking(int fd, bool on = true);
bool set_cloexec(int fd, bool on = true);
void set_nodelay(int fd);

// Binds and listens (SO_REUSEADDR, IPV6_V6ONLY when asked). Returns an invalid fd
// and sets *error ("cannot bind 0.0.0.0:80: Address already in use") on failure.
UniqueFd listen_tcp(const SockAddr& addr, int backlog, bool v6only, std::string* error);

// Binds and listens on a Unix stream socket with the given permissions. A socket
// file nobody answers on (left by a process that died) is replaced; one in use
// is an error.
UniqueFd listen_unix(const std::string& path, unsigned mode, int backlog, std::string* error);

// Starts a non-blocking connect. On success returns the fd and sets *in_progress
// when the connection completes later (EPOLLOUT, then check socket_error()).
UniqueFd connect_tcp(const SockAddr& addr, bool* in_progress, int* err);

// The error of socket(), accept() or pipe() means the process (or the system)
// is out of file descriptors or socket memory: EMFILE, ENFILE, ENOBUFS, ENOMEM.
bool out_of_descriptors(int err);

// Pending error on a socket (SO_ERROR), 0 when none.
int socket_error(int fd);

}  // namespace weir::net
