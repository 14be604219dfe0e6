#!/usr/bin/env python3
"""converge_probe.py A_SOCK B_SOCK N [TIMEOUT_S]: how long after node A's table
holds N entries node B's holds them too, in milliseconds with a tenth of a
millisecond's resolution.

Both runtime sockets (weir's or HAProxy's) are read over one connection each in
interactive mode ("prompt"), so a reading costs a round trip on a Unix socket
(tens of microseconds), not a new process and connection as with socat. Prints
the milliseconds, or "timeout"."""

import re
import socket
import sys
import time

USED = re.compile(rb"used: ?(\d+)")


class Runtime:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(b"prompt\n")
        self.read_until_prompt()

    def read_until_prompt(self):
        data = b""
        while not data.endswith(b"\n> ") and data != b"> ":
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the runtime socket closed")
            data += chunk
        return data

    def used(self):
        self.sock.sendall(b"show table\n")
        m = USED.search(self.read_until_prompt())
        return int(m.group(1)) if m else -1


def main():
    a, b, n = Runtime(sys.argv[1]), Runtime(sys.argv[2]), int(sys.argv[3])
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    start = time.monotonic()
    # A reading every 0.2 ms at most: a finer resolution than the figure
    # needs, and little load on the node being written to.
    while a.used() < n:
        if time.monotonic() - start > limit:
            print("timeout")
            return
        time.sleep(0.0002)
    t0 = time.monotonic()
    while b.used() < n:
        if time.monotonic() - t0 > limit:
            print("timeout")
            return
        time.sleep(0.0002)
    print(f"{(time.monotonic() - t0) * 1000:.1f}")


if __name__ == "__main__":
    main()
