#!/usr/bin/env python3
"""notify_reader.py SOCKET LOG: what systemd does with NOTIFY_SOCKET, for the
package test (systemd is not PID 1 in its chroot). Receives the datagrams of
sd_notify() on SOCKET and appends their lines (READY=1, RELOADING=1,
STATUS=..., MAINPID=...) to LOG, until killed."""

import os
import socket
import sys


def main():
    path, log = sys.argv[1], sys.argv[2]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    while True:
        data = s.recv(65536)
        with open(log, "a", encoding="utf-8", errors="replace") as f:
            for line in data.decode("utf-8", "replace").split("\n"):
                if line:
                    f.write(line + "\n")


if __name__ == "__main__":
    main()
