#!/usr/bin/env python3
"""limits_load.py MODE KEY RATE SECONDS HOST:PORT [HOST:PORT ...]: requests
with X-Key: KEY to each node, RATE a second on each, for SECONDS, over one
keep-alive connection per node; prints "allowed N refused N other N".

MODE poisson: each node's requests come at independent random (Poisson)
moments. MODE same: the nodes are sent their requests at the same moments
(one random sequence for all), the case where updates cross most."""

import http.client
import random
import sys
import threading
import time


def main():
    mode, key, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    nodes = sys.argv[5:]
    counts = {"allowed": 0, "refused": 0, "other": 0}
    lock = threading.Lock()
    start = time.monotonic() + 0.2

    def moments(seed):
        rnd = random.Random(seed)
        t, out = 0.0, []
        while True:
            t += rnd.expovariate(rate)
            if t >= seconds:
                return out
            out.append(start + t)

    shared = moments(1)

    def client(i, hostport):
        host, port = hostport.rsplit(":", 1)
        conn = None
        for at in shared if mode == "same" else moments(100 + i):
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            status = 0
            for _ in range(2):  # once more on a fresh connection if the old one closed
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    conn.request("GET", "/1k", headers={"X-Key": key})
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                    break
                except (OSError, http.client.HTTPException):
                    conn = None
            with lock:
                if status == 200:
                    counts["allowed"] += 1
                elif status == 429:
                    counts["refused"] += 1
                else:
                    counts["other"] += 1

    threads = [threading.Thread(target=client, args=(i, n)) for i, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(" ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
