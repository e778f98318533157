"""Fakes of what lies outside the product: a webhook receiver and an SMTP server, each on a
free local port in a thread, recording what they were sent."""

from __future__ import annotations

import json
import socketserver
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(  # type: ignore[attr-defined]
            {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for ``smtplib``: no TLS, no AUTH, every command accepted."""

    def _say(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self._say("220 fake ESMTP")
        lines: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line.rstrip(b"\r\n") == b".":
                    self.server.received.append(b"".join(lines).decode())  # type: ignore[attr-defined]
                    lines, in_data = [], False
                    self._say("250 queued")
                else:
                    lines.append(line)
                continue
            command = line.strip().upper()
            if command.startswith(b"EHLO"):
                self._say("250-fake")
                self._say("250 8BITMIME")
            elif command == b"DATA":
                in_data = True
                self._say("354 go on")
            elif command == b"QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 ok")


class _ThreadingSmtp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def _serving(server: Any) -> Iterator[Any]:
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[Any]:
    """``.server_address[1]`` is its port; ``.received`` the POSTed JSON bodies (with path)."""
    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)) as server:
        yield server


@contextmanager
def smtp_receiver() -> Iterator[Any]:
    """``.server_address[1]`` is its port; ``.received`` the raw messages."""
    with _serving(_ThreadingSmtp(("127.0.0.1", 0), _Smtp)) as server:
        yield server
