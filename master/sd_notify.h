#pragma once
// systemd's notification protocol, written by hand (no libsystemd needed): one
// datagram of "KEY=VALUE\n" lines to the socket named by $NOTIFY_SOCKET. Without
// $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.

#include <string>
#include <string_view>

namespace weir::sd {

// Sends `state` (e.g. "READY=1\nMAINPID=123"); false if it could not be sent.
bool notify(std::string_view state);
// True when $NOTIFY_SOCKET is set.
bool enabled();
// "MONOTONIC_USEC=<now>" as systemd wants it with RELOADING=1.
std::string monotonic_usec();

}  // namespace weir::sd
