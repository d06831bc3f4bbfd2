"""An OTLP/HTTP endpoint that reads every export and keeps nothing: bench/bench_soak.py's trace collector.

Run as `python bench/otlp_sink.py PORT`. It answers 200 to each POST to /v1/traces after
reading the body, so a traced server pays what it pays with a real collector (encoding,
the batch thread, the HTTP call) and nothing is stored. It counts the bytes it read.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        Sink.received += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = str(Sink.received).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a line per request would drown the bench's own figures."""


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
