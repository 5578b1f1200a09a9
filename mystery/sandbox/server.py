"""The sandbox on loopback HTTP: a stdlib threading server in a background daemon thread.

Why the hand-written response writer: ``BaseHTTPRequestHandler`` sends headers and body in
separate ``send`` calls, and on a keep-alive connection Nagle's algorithm plus delayed ACKs then
stall every response by ~40 ms. Writing each response in one piece (and setting ``TCP_NODELAY``)
keeps a request well under a millisecond of server time, which a 10,000-probe benchmark needs.
HTTP/1.1 keep-alive spares a TCP handshake per request.

Why ``Date`` is on the virtual clock: it is the server's clock as HTTP defines it, and clients
measure the rate-limit resets against it (see :mod:`mystery.sandbox.limits`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mystery.clock import VirtualClock
from mystery.errors import SandboxError
from mystery.sandbox.app import App
from mystery.sandbox.inspection import ground_truth
from mystery.sandbox.routing import Stats
from mystery.sandbox.runners import RUNNER_TIMEOUT
from mystery.sandbox.web import Response
from mystery.sandbox.world import World

log = logging.getLogger(__name__)

_MAX_HEADERS = 100


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response (a timeout test) is normal: log, don't print."""
        log.debug("sandbox connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their threads finish on stop."""
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mystery-sandbox"
    server: _HTTPServer
    raw_requestline: bytes  # set by the base class; missing from typeshed

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark makes tens of thousands of requests."""

    def parse_request(self) -> bool:
        """The request line and headers, without the ``email`` parser the base class uses
        (half the server's time per request). Headers go to ``fields``, lower-cased."""
        words = str(self.raw_requestline, "latin-1").split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.close_connection = True
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        self.fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = str(line, "latin-1").partition(":")
            self.fields[name.strip().lower()] = value.strip()
        else:
            self.close_connection = True
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        connection = self.fields.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        return True

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = self.fields
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            self._write(Response(411, b'{"error": "send a Content-Length, not chunks"}'))
            return
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._write(Response(400, b'{"error": "bad Content-Length"}'))
            return
        body = self.rfile.read(length) if length else b""
        response = self.server.app.handle(
            self.command, unquote(url.path), query, headers, body, url.query
        )
        self._write(response)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def _write(self, response: Response) -> None:
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Status"
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"date: {formatdate(self.server.app.context.world.now().timestamp(), usegmt=True)}",
            f"content-type: {response.content_type}",
            f"content-length: {len(response.body)}",
            "api-version: 2.166",
        ]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + response.body)


class SandboxServer:
    """The sandbox, serving the X API subset and ``/_sandbox/`` on loopback.

    ``with SandboxServer() as sandbox:`` starts it on a free port; ``sandbox.url`` is the base
    URL, ``sandbox.world`` the state (its ``clock`` may be shared with an in-process runner).
    ``runner_timeout``: seconds the clock waits for a silent runner; ``fair_clock=False``: each
    runner's wait moves the clock at once, as if it were alone (:mod:`runners`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: VirtualClock | None = None,
        enforce_rate_limits: bool = False,
        runner_timeout: float = RUNNER_TIMEOUT,
        fair_clock: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.world = World(clock)
        self.app = App(self.world, enforce_rate_limits=enforce_rate_limits,
                       runner_timeout=runner_timeout, fair_clock=fair_clock)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> Stats:
        return self.app.context.stats

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise SandboxError("the sandbox is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._httpd.server_address[1]}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        try:
            self._httpd = _HTTPServer((self.host, self.port), self.app)
        except OSError as exc:
            raise SandboxError(
                f"cannot listen on {self.host} port {self.port}: {exc.strerror or exc}; "
                "is another sandbox running? Choose another --port (0 picks a free one)"
            ) from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="mystery-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises ``KeyboardInterrupt`` here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        # shutdown() waits for the accept loop's next wake-up; a connection wakes it at once.
        stopper = threading.Thread(target=httpd.shutdown)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, httpd.server_port), timeout=1).close()
            stopper.join(0.05)
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = self._thread = None

    def ground_truth(self) -> dict[str, Any]:
        """The same as ``GET /_sandbox/posts``."""
        return ground_truth(self.world)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
