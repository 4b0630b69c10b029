"""A webhook receiver on loopback (a real HTTP server thread, keep-alive), and the receivers'
verification snippet of docs/webhooks.md, loaded from the document itself so that the
documented code is the tested code."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented_verify():
    """The `verify(secret, headers, body)` function of docs/webhooks.md."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code, "docs/webhooks.md has no Python snippet"
    namespace: dict = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own document
    return namespace["verify"]


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    answered: int

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get("webhook-id")


@dataclass
class Receiver:
    """Answers each POST with the next code of `script` (then `default`); keeps every request."""

    url: str
    script: list[int] = field(default_factory=list)
    default: int = 200
    redirect_to: str = ""
    # Fail the first N attempts of every message (by webhook-id) with 500.
    fail_first_per_message: int = 0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict, body: bytes) -> int:
        with self.lock:
            msg_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
            seen = sum(1 for r in self.requests if r.msg_id == msg_id)
            if seen < self.fail_first_per_message:
                code = 500
            else:
                code = self.script.pop(0) if self.script else self.default
            self.requests.append(Received(path, headers, body, code))
            return code

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.answered < 300]


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client closing its keep-alive connection mid-read is normal here; say nothing."""


@pytest.fixture
def receiver():
    holder: dict = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sender's pools use

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            rec: Receiver = holder["receiver"]
            code = rec.answer(self.path, dict(self.headers.items()), body)
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", rec.redirect_to or "/elsewhere")
            reply = b'{"ok": true}' if code < 300 else b"nope"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    holder["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield holder["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allow_private(settings):
    settings.LEADCRM_WEBHOOK_ALLOW_PRIVATE = True
    return settings
