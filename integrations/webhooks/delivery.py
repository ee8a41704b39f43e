"""Sending webhook deliveries: one HTTP attempt at a time, with exponential back-off.

The delivery rows are an outbox written in the same transaction as the event; a periodic
task sends whatever is due, so nothing is lost if a worker or the broker restarts. A
delivery is claimed with a conditional UPDATE, so two workers never send it at once.
"""

import ipaddress
import json
import random
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import WebhookAttempt, WebhookDelivery
from integrations.webhooks.signing import SIGNATURE_HEADER, sign

USER_AGENT = "Fleetroot-Webhooks/1.0"
RESPONSE_BODY_LOG_LIMIT = 2000
# A SENDING claim older than this was left by a worker that died mid-attempt.
STALE_CLAIM_AFTER = timedelta(minutes=5)


def backoff_seconds(attempts_made: int) -> float:
    """Delay before the next try: base x 2^(n-1), with +/-20% jitter, capped at 6 hours."""
    delay = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts_made - 1), 6 * 3600)
    return delay * random.uniform(0.8, 1.2)


def event_body(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return json.dumps(
        {
            "id": str(event.id),
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


def _refuse_private_target(url: str) -> str | None:
    """Block webhooks into our own network (SSRF) unless settings allow it (dev, tests)."""
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return None
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return f"Cannot resolve host '{host}'."
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            return f"Host '{host}' resolves to a private address; refused."
    return None


def claim(delivery_id) -> WebhookDelivery | None:
    """Mark a due delivery SENDING; None if another worker has it or it is not due."""
    now = timezone.now()
    due = Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=WebhookDelivery.Status.SENDING, next_attempt_at__lte=now - STALE_CLAIM_AFTER
    )
    claimed = WebhookDelivery.objects.filter(due, id=delivery_id).update(
        status=WebhookDelivery.Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("subscription", "event__organisation").get(id=delivery_id)


def attempt(delivery_id) -> WebhookDelivery | None:
    """Make one HTTP attempt for a due delivery and log it. Returns None if not claimed."""
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    subscription = delivery.subscription
    body = event_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Fleetroot-Event-Id": str(delivery.event_id),
        "Fleetroot-Event-Type": delivery.event.event_type,
        "Fleetroot-Delivery-Id": str(delivery.id),
        "Fleetroot-Attempt": str(delivery.attempts),
        SIGNATURE_HEADER: sign(subscription.secret, body, timestamp),
    }
    status_code, response_text, error = None, "", ""
    started = time.monotonic()
    refusal = _refuse_private_target(subscription.url)
    if refusal:
        error = refusal
    else:
        try:
            response = httpx.post(
                subscription.url,
                content=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
            )
            status_code, response_text = response.status_code, response.text[:RESPONSE_BODY_LOG_LIMIT]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LOG_LIMIT]
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            request_headers={k: v for k, v in headers.items() if k != SIGNATURE_HEADER},
            response_status=status_code,
            response_body=response_text,
            error=error,
            duration_ms=duration_ms,
        )
        delivery.last_response_status = status_code
        delivery.last_error = error or ("" if succeeded else f"HTTP {status_code}")
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.status = WebhookDelivery.Status.PENDING
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.save(
            update_fields=["status", "last_response_status", "last_error", "delivered_at", "next_attempt_at"]
        )
    return delivery


def due_delivery_ids(limit: int = 100) -> list:
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=WebhookDelivery.Status.SENDING, next_attempt_at__lte=now - STALE_CLAIM_AFTER)
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (manual replay), whatever its state: due now, attempts go on."""
    WebhookDelivery.objects.filter(id=delivery.id).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
    )
    delivery.refresh_from_db()
    if settings.BACKGROUND_JOBS == "celery":
        from integrations.tasks import deliver_webhook

        transaction.on_commit(lambda: deliver_webhook.delay(str(delivery.id)))
    return delivery
