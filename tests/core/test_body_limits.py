"""Request bodies are refused before they are read (core.asgi_limits), per route."""

import asyncio
import json
import socket
import time

import pytest

from core.asgi_limits import BodyLimitMiddleware, limit_for
from tests.deploy.server import production_env, running_server

LIMITS = [("/api/", 1000), ("/api/v1/driver/", 5000)]


class Recorder:
    """A fake client and app around the middleware: what it read and what it answered."""

    def __init__(self, chunks: list[bytes], *, declared: int | None = None, read_all: bool = True) -> None:
        self.chunks = list(chunks)
        self.declared = declared
        self.read_all = read_all
        self.received = 0
        self.app_saw = b""
        self.sent: list[dict] = []

    def scope(self, path: str) -> dict:
        headers = [(b"content-type", b"application/json")]
        if self.declared is not None:
            headers.append((b"content-length", str(self.declared).encode()))
        return {"type": "http", "path": path, "method": "POST", "headers": headers}

    async def receive(self) -> dict:
        chunk = self.chunks.pop(0)
        self.received += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    async def app(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            self.app_saw += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def run(self, path: str = "/api/v1/orders") -> int:
        middleware = BodyLimitMiddleware(self.app, limits=LIMITS, default=100)
        asyncio.run(middleware(self.scope(path), self.receive, self.send))
        return self.sent[0]["status"]

    @property
    def error(self) -> dict:
        return json.loads(self.sent[1]["body"])["error"]


def test_the_longest_matching_prefix_sets_the_limit():
    assert limit_for("/api/v1/orders", LIMITS, 100) == 1000
    assert limit_for("/api/v1/driver/proof", LIMITS, 100) == 5000
    assert limit_for("/admin/", LIMITS, 100) == 100


def test_an_over_limit_content_length_is_refused_without_reading_a_byte():
    probe = Recorder([b"x" * 10], declared=10**12)
    assert probe.run() == 413
    assert probe.received == 0
    assert probe.error["code"] == "body_too_large" and list(probe.error["fields"]) == ["body"]
    headers = dict(probe.sent[0]["headers"])
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"content-security-policy"].startswith(b"default-src 'none'")


@pytest.mark.parametrize("declared", ["-1", "12abc", "½"])
def test_a_malformed_content_length_is_refused(declared):
    probe = Recorder([b""])
    scope = probe.scope("/api/v1/orders")
    scope["headers"].append((b"content-length", declared.encode()))
    asyncio.run(BodyLimitMiddleware(probe.app, limits=LIMITS, default=100)(scope, probe.receive, probe.send))
    assert probe.sent[0]["status"] == 400 and list(probe.error["fields"]) == ["Content-Length"]


def test_a_chunked_body_is_cut_off_at_the_limit():
    probe = Recorder([b"x" * 400] * 10)  # 4,000 bytes in all, no Content-Length
    assert probe.run() == 413
    assert probe.received == 1200  # the third chunk passed 1,000: nothing after it was read
    assert probe.chunks  # the rest was never asked for


def test_bodies_within_the_limit_pass_through_intact():
    chunks = [b'{"a": ', b'"' + b"y" * 500 + b'"', b"}"]
    probe = Recorder(chunks)
    assert probe.run() == 200 and probe.app_saw == b"".join(chunks)
    upload = Recorder([b"z" * 2000] * 2, declared=4000)
    assert upload.run("/api/v1/driver/proof") == 200 and len(upload.app_saw) == 4000


# --- against the real server ------------------------------------------------------------


def raw_request(base: str, head: bytes, body_chunks=(), *, pause: float = 0.0) -> tuple[bytes, float]:
    """Send a raw HTTP request; return the answer and the seconds until its first byte."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(head)
        answer = b""
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: what we want
        conn.settimeout(10)
        first = None
        while True:
            try:
                data = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            first = first or time.monotonic()
            answer += data
        return answer, (first or time.monotonic()) - started


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.deploy.server import manage

    tmp_path = tmp_path_factory.mktemp("limits")
    env = production_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    with running_server(env) as base:
        yield base


def test_the_server_refuses_a_400_mib_declaration_at_once(server):
    head = (
        b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer frk_x_y\r\nContent-Length: 419430400\r\n\r\n"
    )
    answer, seconds = raw_request(server, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body"' in answer
    assert seconds < 1.0
    print(f"\nrefused a 400 MiB Content-Length in {seconds * 1000:.1f} ms")


def test_the_server_refuses_an_endless_declaration_without_waiting(server):
    head = b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000\r\n\r\n"
    answer, seconds = raw_request(server, head)
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 1.0


def test_the_server_stops_reading_a_chunked_body_at_the_limit(server):
    head = (
        b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    # Up to 64 MiB offered; the API's limit is 256 KiB.
    answer, _seconds = raw_request(server, head, (frame for _ in range(1024)))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
