#!/usr/bin/env python3
"""split_server.py PORT - an HTTP/1.1 keep-alive server that answers every GET
with a 1 KiB body written apart from its head, as Python's http.server does:
the head leaves in one write, the body in a second one, on a socket without
TCP_NODELAY. Its second write waits for the ACK of the first (Nagle's
algorithm); a receiver that delays that ACK stalls each response for up to
its delayed-ACK time (40 ms on Linux). bench/split_writes.sh runs two."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"x" * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()  # the head: one write
        self.wfile.write(BODY)  # the body: another

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
