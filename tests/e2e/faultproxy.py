"""A fault-injecting HTTP proxy between `ikon serve` and the S3 engine (toxiproxy is not
packaged here): every request is forwarded verbatim (the Host header too, so SigV4
signatures stay valid), and with the configured probabilities a request is answered 503,
its connection reset, stalled past the client's timeout, or its response body truncated or
garbled (one flipped byte) — the latter two only for GETs of objects. A byte budget makes
PUTs fail with S3's `QuotaExceeded` once that much has been stored (a full store)."""

import http.client
import http.server
import random
import socket
import socketserver
import struct
import threading
import time


class Faults:
    """What to inject; change it between steps with `set(...)`."""

    def __init__(self, seed=1):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.p = {}
        self.stall_secs = 5.0
        self.put_budget = None
        self.counts = {}

    def set(self, stall_secs=5.0, put_budget=None, **p):
        """New faults (and fresh counts)."""
        with self.lock:
            self.counts = {}
            self.p = dict(p)
            self.stall_secs = stall_secs
            self.put_budget = put_budget

    def pick(self, method, path):
        """The fault for this request (None: forward it untouched)."""
        with self.lock:
            for kind in ("reset", "error", "stall", "truncate", "flip"):
                if kind in ("truncate", "flip") and (method != "GET" or path.rstrip("/").count("/") < 2):
                    continue
                if self.rng.random() < self.p.get(kind, 0.0):
                    self.counts[kind] = self.counts.get(kind, 0) + 1
                    return kind
            return None

    def take_put(self, n):
        """Whether `n` more bytes may be stored."""
        with self.lock:
            if self.put_budget is None:
                return True
            if n > self.put_budget:
                self.counts["full"] = self.counts.get("full", 0) + 1
                return False
            self.put_budget -= n
            return True


def _reset(sock):
    # SO_LINGER 0: close with a TCP RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _any(self):
        body = self._body()
        faults, upstream = self.server.faults, self.server.upstream
        kind = faults.pick(self.command, self.path)
        if kind == "reset":
            self.close_connection = True
            _reset(self.connection)
            return
        if kind == "stall":
            time.sleep(faults.stall_secs)
            self.close_connection = True
            return
        if kind == "error":
            return self._send(503, {"Content-Type": "application/xml"},
                              b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>")
        if self.command == "PUT" and body and not faults.take_put(len(body)):
            return self._send(403, {"Content-Type": "application/xml"},
                              b"<Error><Code>QuotaExceeded</Code><Message>bucket quota exceeded</Message></Error>")
        conn = http.client.HTTPConnection(upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = {k: v for k, v in resp.getheaders()
               if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")}
        conn.close()
        if kind == "truncate" and len(data) > 16 and resp.status == 200:
            self.send_response(resp.status)
            for k, v in out.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            _reset(self.connection)
            return
        if kind == "flip" and data and resp.status in (200, 206):
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]
        self._send(resp.status, out, data)

    def _send(self, status, headers, data):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultProxy:
    """The proxy on 127.0.0.1:PORT in front of `upstream` (host:port)."""

    def __init__(self, upstream, seed=1):
        self.faults = Faults(seed)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.faults = self.faults
        self.server.upstream = upstream
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
