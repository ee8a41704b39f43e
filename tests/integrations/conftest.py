"""A real HTTP receiver on 127.0.0.1 for webhook tests, and shared webhook fixtures."""

import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations import services
from integrations.webhooks.signing import SIGNATURE_HEADER, verify

# Scripted replies besides a plain status code.
HANG = "hang"  # read the request, then answer nothing until the client has given up
CLOSE = "close"  # read the request, then drop the connection without an answer


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool | None
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return {key.lower(): value for key, value in self.headers.items()}.get(name.lower())


class WebhookReceiver:
    """Records every request (headers and raw body) and answers from a script.

    Once told the subscription secrets (`secrets`), it checks the Fleetroot-Signature header
    as a customer would, and answers 401 to a request whose signature verifies with none.
    """

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.secrets: list[str] = []
        self.hang_seconds = 5.0
        self._script: deque = deque()
        self._changed = threading.Condition()
        self.stopping = threading.Event()
        self.url = ""

    def answer(self, *replies) -> None:
        """Queue replies: a status code, a Reply, HANG or CLOSE. Then 200 for ever."""
        self._script.extend(replies)

    def next_reply(self):
        try:
            return self._script.popleft()
        except IndexError:
            return 200

    def record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)} in {timeout}s")
            return list(self.requests)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signature_valid = None
        if receiver.secrets:
            header = self.headers.get(SIGNATURE_HEADER, "")
            signature_valid = any(verify(secret, body, header) for secret in receiver.secrets)
        receiver.record(
            ReceivedRequest(self.command, self.path, dict(self.headers.items()), body, signature_valid)
        )
        if signature_valid is False:
            self._send(Reply(401, b"bad signature"))
            return
        reply = receiver.next_reply()
        if reply == HANG:
            receiver.stopping.wait(receiver.hang_seconds)
            return
        if reply == CLOSE:
            self.close_connection = True
            return
        self._send(reply if isinstance(reply, Reply) else Reply(reply, f"reply {reply}".encode()))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format, *args) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def handle_error(self, request, client_address) -> None:
        """A sender that gave up (deadline tests) resets the connection: expected, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def running_receiver():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = WebhookReceiver()
    server.receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/fleetroot"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver():
    with running_receiver() as started:
        yield started


@pytest.fixture
def second_receiver():
    with running_receiver() as started:
        yield started


@pytest.fixture(autouse=True)
def in_process_jobs(settings):
    """Deliveries are sent only when a test sends them, whatever REDIS_URL says, to the
    local receiver (http, 127.0.0.1).

    Tests of the Celery path switch BACKGROUND_JOBS back themselves; tests of the SSRF
    guard switch the target settings off.
    """
    settings.BACKGROUND_JOBS = "in-process"
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True  # the local receiver speaks plain http
    # Sweeps send on the test's own thread: other threads cannot see a test's uncommitted
    # rows. The fairness tests (transactional) turn the worker threads back on.
    settings.WEBHOOK_SWEEP_WORKERS = 1


def subscribe(organisation, receiver, event_types=("order.*",), **extra):
    """A subscription to the receiver; the receiver checks signatures with its secret."""
    subscription = services.create_webhook_subscription(
        organisation=organisation, url=receiver.url, event_types=list(event_types), **extra
    )
    receiver.secrets.append(subscription.secret)
    return subscription


def unused_port() -> int:
    """A local port with nothing listening on it (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
