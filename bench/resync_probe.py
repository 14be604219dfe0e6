#!/usr/bin/env python3
"""resync_probe.py SOCK N T0_NS [TIMEOUT_S]: the milliseconds from T0_NS (the
wall clock in nanoseconds when the node was started) until the table that the
runtime socket SOCK shows holds N entries; or "timeout". With T0_NS 0, the
wall clock in milliseconds at that moment (bench/peers.sh starts the probe
before the node, so that the probe's own start costs the node nothing).

The node is starting: the socket is tried every millisecond until it answers,
then read every 2 ms over one connection in interactive mode, so that the
probe costs the node and the machine almost nothing (a socat process per
reading would take a good part of a core from the node being measured)."""

import socket
import sys
import time

from converge_probe import Runtime


def main():
    path, n, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    deadline = time.monotonic() + limit
    rt = None
    while rt is None:
        try:
            rt = Runtime(path)
        except (OSError, ConnectionError):
            if time.monotonic() > deadline:
                print("timeout")
                return
            time.sleep(0.001)
    while True:
        try:
            used = rt.used()
        except (OSError, ConnectionError):
            used = -1
            rt = None
            while rt is None and time.monotonic() < deadline:
                try:
                    rt = Runtime(path)
                except (OSError, ConnectionError):
                    time.sleep(0.001)
        if used >= n:
            break
        if time.monotonic() > deadline or rt is None:
            print("timeout")
            return
        time.sleep(0.002)
    print((time.time_ns() - t0) // 1_000_000)


if __name__ == "__main__":
    main()
