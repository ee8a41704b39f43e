"""One try has one deadline for all of it: resolving, connecting, sending, reading the answer."""

import socket
import threading
import time

import pytest

from integrations.webhooks import delivery as webhook_delivery
from tests.integrations.conftest import HANG


@pytest.fixture
def deadline(settings):
    """A 1 s deadline, under a per-operation timeout (2 s) it must not be confused with."""
    settings.WEBHOOK_ATTEMPT_DEADLINE_SECONDS = 1.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0


# An HTTP answer, and the start of a TLS record (a handshake message 16 KiB long).
TRICKLED = {"http": b"HTTP/1.1 200 OK\r\nX-Slow: aaaa", "https": b"\x16\x03\x03\x40\x00" + b"\x02" * 15}


@pytest.fixture(params=["http", "https"])
def trickler(request):
    """A receiver that answers one byte every 0.2 s for 4 s (after reading the request, or
    the TLS ClientHello): every read returns within the socket timeout, so only a total
    deadline ends the try sooner."""
    scheme = request.param
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                for byte in TRICKLED[scheme][:20]:
                    if stop.wait(0.2):
                        return
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"{scheme}://127.0.0.1:{server.getsockname()[1]}/hooks"
    stop.set()
    thread.join(5)
    server.close()


def timed_send(url: str):
    started = time.monotonic()
    outcome = webhook_delivery.send(url, b"{}", {"Content-Type": "application/json"})
    return outcome, time.monotonic() - started


def test_a_receiver_that_trickles_its_answer_is_cut_at_the_deadline(deadline, trickler):
    outcome, took = timed_send(trickler)
    assert outcome.status_code is None
    assert "Deadline exceeded" in outcome.error
    assert 0.9 < took < 1.6


def test_a_receiver_that_never_answers_is_cut_at_the_deadline_not_the_read_timeout(deadline, receiver):
    receiver.answer(HANG)
    outcome, took = timed_send(receiver.url)
    assert "Deadline exceeded" in outcome.error
    assert 0.9 < took < 1.6
    assert len(receiver.requests) == 1


def test_a_slow_dns_lookup_counts_against_the_deadline(deadline, monkeypatch):
    def slow_lookup(*args, **kwargs):
        time.sleep(5)
        raise OSError("too late")

    monkeypatch.setattr(webhook_delivery.socket, "getaddrinfo", slow_lookup)
    outcome, took = timed_send("https://slow-dns.example/hooks")
    assert outcome.status_code is None
    assert "Deadline exceeded" in outcome.error and "resolving 'slow-dns.example'" in outcome.error
    assert took < 1.5


def test_a_prompt_answer_is_not_affected(deadline, receiver):
    outcome, took = timed_send(receiver.url)
    assert outcome.status_code == 200 and outcome.error == ""
    assert took < 1.0
