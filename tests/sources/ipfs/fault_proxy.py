"""A loopback HTTP proxy (standard library only) that injects faults between client and node."""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("503", "drop", "delay", "truncate", "trickle", "endless_404", "retry_after")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """Forwards to `upstream`; each of the next requests suffers the fault queued for it
    ("503": answered 503; "drop": closed unanswered; "delay": answered after `delay_s`;
    "truncate": half the body, then closed; "trickle": the body one byte every `delay_s`;
    "endless_404": a 404 whose body never ends; "retry_after": a 429 asking to wait an hour).
    With `alter`, every body has one byte changed."""

    def __init__(self, upstream: str, delay_s: float = 2.0):
        self.upstream = urlsplit(upstream)
        self.delay_s = delay_s
        self.sent_error_bytes = 0
        self.alter = False
        self.requests = 0
        self._faults: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self
        self._server.handle_error = lambda request, address: None  # clients that gave up
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def inject(self, *faults: str) -> None:
        assert all(f in FAULTS for f in faults), faults
        with self._lock:
            self._faults.extend(faults)

    def next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            return self._faults.pop(0) if self._faults else None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        proxy: FaultProxy = self.server.proxy
        fault = proxy.next_fault()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "503":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "retry_after":
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "endless_404":
            self.send_response(404)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while True:  # until the client hangs up
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    proxy.sent_error_bytes += len(chunk)
            except OSError:
                self.close_connection = True
                return
        if fault == "delay":
            time.sleep(proxy.delay_s)
        upstream = http.client.HTTPConnection(
            proxy.upstream.hostname, proxy.upstream.port, timeout=30
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        if proxy.alter and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if fault == "trickle":
            try:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(proxy.delay_s)
            except OSError:
                self.close_connection = True
            return
        self.wfile.write(data)

    do_GET = do_POST
