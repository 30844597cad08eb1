#!/usr/bin/env python3
"""hello-http: an HTTP-mode faas-rs (and OpenFaaS of-watchdog) function, standard library only.

It serves HTTP on the port of the `upstream_url` environment variable (else `PORT`, else 5000) and
answers every request with JSON describing it. `POST /crash` makes the process exit at once, to
show that the platform restarts a function that dies.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


def listen_port():
    for name in ("upstream_url", "http_upstream_url"):
        url = os.environ.get(name, "")
        if url:
            port = urlparse(url).port
            if port:
                return port
    return int(os.environ.get("PORT", "5000"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hello-http/1"

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size_line = self.rfile.readline().split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    # trailers end with an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def handle_any(self):
        body = self.read_body()
        url = urlparse(self.path)
        if url.path.rstrip("/").endswith("/crash") and self.command == "POST":
            sys.stderr.write("hello-http: crashing on request\n")
            sys.stderr.flush()
            os._exit(3)
        answer = {
            "message": "hello from python",
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "body": body.decode("utf-8", "replace"),
            "pid": os.getpid(),
        }
        payload = (json.dumps(answer) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("hello-http: " + (fmt % args) + "\n")


def main():
    port = listen_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"hello-http: listening on 127.0.0.1:{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
