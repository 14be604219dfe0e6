#!/usr/bin/env python3
"""reload-continuity.py: the client of bench/reload-continuity.sh.

Sends exactly N GET requests to 127.0.0.1:PORT at RATE requests per second
(request i is due at i / RATE s; a late one goes at once), each with
`x-key: k<i mod KEYS>`, over a pool of CONNS keep-alive connections used in
turn (request i on connection i mod CONNS), while a second thread runs
RELOAD_CMD RELOADS times, spread over the run (reload j is due at
(j + 0.5) * N / RATE / RELOADS s), each run only after the previous one has
returned (the command itself waits for the reload to complete).

A connection whose response says `Connection: close` (what a draining process
answers) is reopened for its next request; those responses are counted. A
request that gets no response at all because the connection was closed or
refused (HAProxy closes idle connections when it stops; nothing of the request
was read) is sent again on a new connection, at most 20 times: `retries`.
A request that got part of a response, or none within 10 s, is `failed` and
not sent again (it may have been counted).

Prints one JSON object on stdout: answered_2xx, statuses, failed, retries,
close_responses, per_key (2xx answers per key), reloads (each: due, start and
end in s from the start, exit status), elapsed_s, max_late_ms.
"""

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/1k")
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--reloads", type=int, default=10)
    p.add_argument("--reload-cmd", required=True, help="run with bash -c; waits for the reload")
    p.add_argument("--reload-log", default="/dev/null", help="the reload commands' output")
    return p.parse_args()


# Errors that mean the request was not read by the proxy: the connection was
# closed (or reset, or refused) before any byte of a response came back.
NOT_READ = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionRefusedError,
    BrokenPipeError,
)


class Client:
    def __init__(self, args):
        self.args = args
        self.pool = [None] * args.conns
        self.statuses = {}
        self.per_key = {}
        self.failed = 0
        self.retries = 0
        self.close_responses = 0
        self.errors = []

    def connection(self, slot):
        if self.pool[slot] is None:
            self.pool[slot] = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=10)
        return self.pool[slot]

    def drop(self, slot):
        if self.pool[slot] is not None:
            self.pool[slot].close()
            self.pool[slot] = None

    def request(self, i):
        slot = i % self.args.conns
        key = "k%d" % (i % self.args.keys)
        for attempt in range(21):
            conn = self.connection(slot)
            got_head = False
            try:
                conn.request("GET", self.args.path, headers={"x-key": key})
                resp = conn.getresponse()
                got_head = True
                resp.read()
            except NOT_READ as e:
                self.drop(slot)
                if got_head or attempt == 20:
                    self.fail(i, e)
                    return
                self.retries += 1
                if isinstance(e, ConnectionRefusedError):
                    time.sleep(0.01)
                continue
            except (OSError, http.client.HTTPException) as e:
                self.drop(slot)
                self.fail(i, e)
                return
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
            if 200 <= resp.status < 300:
                self.per_key[key] = self.per_key.get(key, 0) + 1
            if resp.will_close:
                self.close_responses += 1
                self.drop(slot)
            return

    def fail(self, i, e):
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append("request %d: %s: %s" % (i, type(e).__name__, e))


def reloader(args, t0, out, log):
    period = args.n / args.rate / args.reloads
    for j in range(args.reloads):
        due = (j + 0.5) * period
        delay = t0 + due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        start = time.monotonic() - t0
        log.write("--- reload %d at %.3f s\n" % (j + 1, start))
        log.flush()
        rc = subprocess.run(["bash", "-c", args.reload_cmd], stdout=log, stderr=log).returncode
        out.append({"due": round(due, 3), "start": round(start, 3),
                    "end": round(time.monotonic() - t0, 3), "status": rc})


def main():
    args = parse_args()
    client = Client(args)
    reloads = []
    with open(args.reload_log, "a") as log:
        t0 = time.monotonic()
        thread = threading.Thread(target=reloader, args=(args, t0, reloads, log), daemon=True)
        thread.start()
        max_late = 0.0
        for i in range(args.n):
            delay = t0 + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                max_late = max(max_late, -delay)
            client.request(i)
        elapsed = time.monotonic() - t0
        for slot in range(args.conns):
            client.drop(slot)
        thread.join(120)
    json.dump({
        "answered_2xx": sum(client.per_key.values()),
        "statuses": {str(k): v for k, v in sorted(client.statuses.items())},
        "failed": client.failed,
        "retries": client.retries,
        "close_responses": client.close_responses,
        "per_key": dict(sorted(client.per_key.items())),
        "reloads": reloads,
        "elapsed_s": round(elapsed, 3),
        "max_late_ms": round(max_late * 1000, 1),
        "errors": client.errors,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    main()
