#!/usr/bin/env python3
"""An HTTP server for sink tests: records every request and answers from a script.

Usage: http_server.py PORT DIR
  Each request is appended to DIR/requests.jsonl as
  {"method", "path", "headers": {lowercased}, "body_b64"}.
  POST /_control with {"script": [...], "default": {...}} sets the answers for the next
  requests, in order, then the default (200, "{}"). An answer is
  {"status": 503, "headers": {"Retry-After": "1"}, "body": "..."} or {"drop": true},
  which closes the connection without answering; "sleep": seconds delays the answer;
  "body_bytes": N answers a body of N bytes of "x", streamed in 64 KiB chunks (never
  held in memory; for response-size limits).
  GET /_count answers the number of requests recorded.
Fault injection only: real protocol servers (mosquitto, kinesalite, s3rver) are used
wherever they exist.
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DIR = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()
STATE = {"script": [], "default": {"status": 200, "body": "{}"}, "count": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self._body()
        if self.path == "/_control":
            with LOCK:
                cfg = json.loads(body or b"{}")
                STATE["script"] = cfg.get("script", [])
                STATE["default"] = cfg.get("default", {"status": 200, "body": "{}"})
            return self._answer(200, b"ok")
        if self.path == "/_count":
            with LOCK:
                return self._answer(200, str(STATE["count"]).encode())
        with LOCK:
            STATE["count"] += 1
            with open(f"{DIR}/requests.jsonl", "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body_b64": base64.b64encode(body).decode()}) + "\n")
            answer = STATE["script"].pop(0) if STATE["script"] else STATE["default"]
        if answer.get("sleep"):
            time.sleep(float(answer["sleep"]))
        if answer.get("drop"):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if answer.get("body_bytes"):
            return self._stream(answer.get("status", 200), int(answer["body_bytes"]))
        self._answer(answer.get("status", 200), answer.get("body", "").encode(), answer.get("headers"))

    def _stream(self, status, n):
        self.send_response(status)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while n > 0:
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= min(n, len(chunk))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
