"""Sending webhook deliveries: one HTTP attempt at a time, with exponential back-off.

The delivery rows are an outbox written in the same transaction as the event; a periodic
task sends whatever is due, so nothing is lost if a worker or the broker restarts. A
delivery is claimed with a conditional UPDATE, so two workers never send it at once, and
its outcome is written only while that claim still holds.

This module knows nothing of Celery: `integrations.tasks` calls it, never the reverse.
"""

import contextlib
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.webhooks.signing import SIGNATURE_HEADER, sign
from integrations.webhooks.targets import TargetRefused, check_address, check_url

logger = logging.getLogger(__name__)

USER_AGENT = "Fleetroot-Webhooks/1.0"
RESPONSE_BODY_LOG_LIMIT = 2000
# A SENDING claim older than this was left by a worker that died mid-attempt.
STALE_CLAIM_AFTER = timedelta(minutes=5)
MAX_BACKOFF_SECONDS = 6 * 3600


def backoff_seconds(attempts_made: int) -> float:
    """Delay before the next try: base x 2^(n-1), with +/-20% jitter, capped at 6 hours."""
    # The exponent is bounded first: 2 ** 1100 overflows a float (replays keep counting).
    exponent = min(max(attempts_made - 1, 0), 40)
    delay = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2**exponent, MAX_BACKOFF_SECONDS)
    return delay * random.uniform(0.8, 1.2)


def event_body(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return json.dumps(
        {
            "id": str(event.id),
            "sequence": event.sequence,
            "type": event.event_type,
            "created": event.occurred_at.isoformat(),
            "organisation": event.organisation.slug,
            "actor": {"type": event.actor_type, "label": event.actor_label},
            "reason": event.reason,
            "data": event.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class DeadlineExceeded(Exception):
    """The try ran out of its WEBHOOK_ATTEMPT_DEADLINE_SECONDS."""


def _resolve(host: str, port: int, deadline: float) -> list:
    """getaddrinfo under the try's deadline: it has no timeout of its own (the resolver's
    retries can take many seconds), so it runs in a daemon thread that is left behind if slow."""
    found: dict = {}

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc

    thread = threading.Thread(target=lookup, name="webhook-dns", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0))
    if thread.is_alive():
        raise DeadlineExceeded(f"resolving '{host}'")
    if "error" in found:
        raise TargetRefused(f"Cannot resolve host '{host}': {found['error']}.")
    return found["infos"]


def target_addresses(host: str, port: int, deadline: float) -> list[str]:
    """The addresses to connect to, each one checked; the connection is pinned to them.

    Resolving once and connecting to what was checked defeats DNS rebinding (a name that
    resolves to a public address for the check and to 127.0.0.1 for the request).
    """
    addresses = list(dict.fromkeys(info[4][0] for info in _resolve(host, port, deadline)))
    for address in addresses:
        check_address(host, address)
    return addresses


class _Watchdog:
    """Shuts the try's connection down at its deadline, so a connect, send or read blocked on
    a receiver that trickles or never answers fails then: socket timeouts bound one operation
    each, not their sum. It learns the socket from httpcore's `trace` request extension and
    keeps a duplicate of it (TLS takes the original over)."""

    def __init__(self, deadline: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def trace(self, event: str, info: dict) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket").dup()
        with self._lock:
            self._sockets.append(sock)
            if self._expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake whatever is blocked on the socket; the client closes it as usual."""
    with contextlib.suppress(OSError):  # the peer has closed it already
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    response_text: str = ""
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _storable(text: str) -> str:
    """Bounded, and without NUL (PostgreSQL text cannot hold it; the write would fail)."""
    return text.replace("\x00", "")[:RESPONSE_BODY_LOG_LIMIT]


def _read_capped(response: httpx.Response, deadline: float) -> str:
    """At most RESPONSE_BODY_LOG_LIMIT bytes of the body: a receiver cannot flood us.

    The status line has answered already: a body cut at the deadline is logged as far as it came.
    """
    received = bytearray()
    try:
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) >= RESPONSE_BODY_LOG_LIMIT or time.monotonic() > deadline:
                break
    except httpx.TransportError:
        if time.monotonic() < deadline:
            raise
    return bytes(received[:RESPONSE_BODY_LOG_LIMIT]).decode(response.encoding or "utf-8", errors="replace")


def _post_pinned(
    url: httpx.URL, address: str, body: bytes, headers: dict[str, str], deadline: float
) -> Outcome:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("connecting")
    timeout = min(settings.WEBHOOK_TIMEOUT_SECONDS, remaining)  # per operation; the watchdog bounds the sum
    host = url.raw_host.decode("ascii")
    watchdog = _Watchdog(deadline)
    # Connect to the checked address; Host header and TLS (SNI, certificate) keep the name.
    extensions = {"trace": watchdog.trace}
    if url.scheme == "https":
        extensions["sni_hostname"] = host
    request_headers = {**headers, "Host": url.netloc.decode("ascii")}
    # trust_env=False: an HTTP(S)_PROXY from the environment would resolve the name again.
    with (
        watchdog,
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        client.stream(
            "POST",
            url.copy_with(host=address),
            content=body,
            headers=request_headers,
            extensions=extensions,
        ) as response,
    ):
        text = _read_capped(response, deadline=min(deadline, time.monotonic() + timeout))
    return Outcome(status_code=response.status_code, response_text=text)


def send(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once; every failure comes back as an Outcome with an error, never raises.

    The whole try (resolving, connecting, sending, reading the answer) ends by
    WEBHOOK_ATTEMPT_DEADLINE_SECONDS: a receiver that never answers holds a worker that long
    at most, whatever it trickles.
    """
    allowed = settings.WEBHOOK_ATTEMPT_DEADLINE_SECONDS
    deadline = time.monotonic() + allowed
    try:
        target = check_url(url)  # the rules of subscription time, again: settings may have changed
        parsed = httpx.URL(url)
        addresses = target_addresses(parsed.raw_host.decode("ascii"), target.port, deadline)
        error = ""
        for address in addresses:
            try:
                return _post_pinned(parsed, address, body, headers, deadline)
            except httpx.ConnectError as exc:
                if time.monotonic() >= deadline:
                    raise
                # Nothing was sent, so the host's next address is safe to try.
                error = f"{type(exc).__name__}: {exc} ({address})"
        return Outcome(error=error)
    except DeadlineExceeded as exc:
        return Outcome(error=f"Deadline exceeded: the try took over {allowed:g} s ({exc}).")
    except TargetRefused as exc:
        return Outcome(error=str(exc))
    except httpx.InvalidURL as exc:
        return Outcome(error=f"Invalid URL: {exc}")
    except httpx.HTTPError as exc:
        if time.monotonic() >= deadline:  # the watchdog cut the connection
            return Outcome(
                error=f"Deadline exceeded: the try took over {allowed:g} s ({type(exc).__name__})."
            )
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        # A bad URL in an old row, an odd codec...: logged as this try's error. Raising would
        # leave the delivery SENDING until the claim goes stale, and then fail the same way.
        logger.exception("Unexpected error sending a webhook to %s", url)
        return Outcome(error=f"{type(exc).__name__}: {exc}")


def claim(delivery_id) -> WebhookDelivery | None:
    """Mark a due delivery SENDING; None if another worker has it, or it is not due.

    Deliveries of an inactive subscription are not due: deactivating pauses them.
    """
    now = timezone.now()
    # No join in this filter: Django would turn the UPDATE into "id IN (SELECT ... )", whose
    # inner read PostgreSQL does not re-check after waiting for a concurrent claim's row lock,
    # and both claims would win.
    active = WebhookSubscription.objects.filter(is_active=True).values("id")
    claimed = WebhookDelivery.objects.filter(
        due_filter(now), id=delivery_id, subscription_id__in=active
    ).update(status=WebhookDelivery.Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("subscription", "event__organisation").get(id=delivery_id)


def due_filter(now) -> Q:
    """Pending and due, or SENDING under a claim gone stale (its worker died)."""
    return Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=WebhookDelivery.Status.SENDING, next_attempt_at__lte=now - STALE_CLAIM_AFTER
    )


def attempt(delivery_id) -> WebhookDelivery | None:
    """Make one HTTP attempt for a due delivery and log it. Returns None if not claimed."""
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    subscription = delivery.subscription
    body = event_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
        "Fleetroot-Event-Id": str(delivery.event_id),
        "Fleetroot-Event-Type": delivery.event.event_type,
        # Numbered per organisation without gaps: a receiver sees a gap or a replay from it.
        "Fleetroot-Event-Sequence": str(delivery.event.sequence),
        "Fleetroot-Delivery-Id": str(delivery.id),
        "Fleetroot-Attempt": str(delivery.attempts),
        SIGNATURE_HEADER: sign(subscription.secret, body, int(time.time())),
    }
    started = time.monotonic()
    outcome = send(subscription.url, body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    _record(delivery, outcome, headers, duration_ms)
    return delivery


def _record(delivery: WebhookDelivery, outcome: Outcome, headers: dict, duration_ms: int) -> None:
    """Log the try and move the delivery on, if our claim still holds."""
    now = timezone.now()
    error = _storable(outcome.error)  # transport errors; the status code has its own column
    last_error = error or ("" if outcome.succeeded else f"HTTP {outcome.status_code}")
    changes = {"last_response_status": outcome.status_code, "last_error": last_error}
    if outcome.succeeded:
        changes.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None)
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        changes.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    else:
        next_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        changes.update(status=WebhookDelivery.Status.PENDING, next_attempt_at=next_at)
    if not outcome.succeeded:
        logger.warning(
            "Webhook delivery %s attempt %s failed: %s", delivery.id, delivery.attempts, last_error
        )
    try:
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=delivery.attempts,
                request_headers={k: v for k, v in headers.items() if k != SIGNATURE_HEADER},
                response_status=outcome.status_code,
                response_body=_storable(outcome.response_text),
                error=error,
                duration_ms=duration_ms,
            )
            # Conditional on our claim: a worker that took a stale claim over owns the row now.
            still_ours = WebhookDelivery.objects.filter(
                id=delivery.id, status=WebhookDelivery.Status.SENDING, attempts=delivery.attempts
            ).update(**changes)
    except IntegrityError:
        # The delivery was deleted with its subscription while we were sending.
        logger.info("Webhook delivery %s disappeared during its attempt", delivery.id)
        return
    if still_ours:
        for name, value in changes.items():
            setattr(delivery, name, value)
