"""Bad input is refused with a 4xx that names the field, and nothing is written.

The one row a refused POST may leave is its IdempotencyRecord holding that very error, so that
a retry with the same key gets the same answer (see test_idempotency); a request refused
before its key is claimed (a bad key, an oversized body) leaves none.
"""

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings

from core.models import DomainEvent, IdempotencyRecord
from dispatch.models import Order, OrderTransition
from integrations.models import WebhookDelivery, WebhookSubscription
from tests.api.conftest import error_of
from tests.conftest import order_payload

URL = "/api/v1/orders"
PICKUP_START = order_payload()["pickup"]["window"]["start"]
BEFORE_PICKUP = "2030-01-01T11:00:00+00:00"
JUST_BEFORE_PICKUP = "2030-01-01T11:59:59+00:00"


def written() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "events": DomainEvent.objects.count(),
        "transitions": OrderTransition.objects.count(),
        "deliveries": WebhookDelivery.objects.count(),
        "subscriptions": WebhookSubscription.objects.count(),
    }


def changed(path: str, value: Any):
    """The valid payload with one value (by dotted path) set; a new key if it is unknown."""

    def build() -> dict:
        body = order_payload()
        *parents, last = path.split(".")
        node = body
        for name in parents:
            node = node[name]
        node[last] = value
        return body

    return build


def without(path: str):
    def build() -> dict:
        body = order_payload()
        *parents, last = path.split(".")
        node = body
        for name in parents:
            node = node[name]
        del node[last]
        return body

    return build


def dropoff_closing_before_pickup_opens() -> dict:
    body = order_payload()
    body["dropoff"]["window"] = {"start": BEFORE_PICKUP, "end": JUST_BEFORE_PICKUP}
    return body


BODY_CASES = [
    ("lat-91", changed("pickup.lat", 91), "pickup.lat"),
    ("lon-minus-181", changed("pickup.lon", -181), "pickup.lon"),
    ("dropoff-lat-below-minus-90", changed("dropoff.lat", -90.5), "dropoff.lat"),
    ("dropoff-lon-181", changed("dropoff.lon", 180.0001), "dropoff.lon"),
    ("lat-not-a-number", changed("pickup.lat", "north"), "pickup.lat"),
    ("lat-infinity", changed("pickup.lat", "Infinity"), "pickup.lat"),
    ("lat-nan", changed("pickup.lat", "NaN"), "pickup.lat"),
    ("window-end-equals-start", changed("pickup.window.end", PICKUP_START), "pickup.window.end"),
    ("window-end-before-start", changed("pickup.window.end", BEFORE_PICKUP), "pickup.window.end"),
    (
        "dropoff-window-end-before-its-start",
        changed("dropoff.window.end", BEFORE_PICKUP),
        "dropoff.window.end",
    ),
    ("dropoff-window-ends-before-pickup-starts", dropoff_closing_before_pickup_opens, "dropoff.window.end"),
    ("naive-window-start", changed("pickup.window.start", "2030-01-01T12:00:00"), "pickup.window.start"),
    ("naive-window-end", changed("dropoff.window.end", "2030-01-01T13:30:00.000"), "dropoff.window.end"),
    ("window-not-a-time", changed("pickup.window.start", "noon"), "pickup.window.start"),
    ("negative-weight", changed("weight_kg", "-0.01"), "weight_kg"),
    ("negative-volume", changed("volume_litres", -1), "volume_litres"),
    ("negative-tip", changed("tip_minor", -1), "tip_minor"),
    ("negative-declared-value", changed("declared_value_minor", -500), "declared_value_minor"),
    ("fractional-tip", changed("tip_minor", 1.5), "tip_minor"),
    ("unknown-top-level-field", changed("colour", "red"), "colour"),
    ("unknown-nested-field", changed("pickup.floor", 3), "pickup.floor"),
    ("unknown-window-field", changed("dropoff.window.timezone", "UTC"), "dropoff.window.timezone"),
    ("unknown-recipient-field", changed("recipient.nickname", "M"), "recipient.nickname"),
    ("status-is-not-settable", changed("status", "DELIVERED"), "status"),
    ("missing-external-ref", without("external_ref"), "external_ref"),
    ("missing-pickup", without("pickup"), "pickup"),
    ("missing-window-end", without("pickup.window.end"), "pickup.window.end"),
    ("pickup-not-an-object", changed("pickup", "Aleksanterinkatu 52"), "pickup"),
    ("external-ref-with-spaces", changed("external_ref", "has spaces"), "external_ref"),
    ("external-ref-too-long", changed("external_ref", "x" * 101), "external_ref"),
    ("lowercase-currency", changed("currency", "eur"), "currency"),
    ("unknown-priority", changed("priority", "asap"), "priority"),
    ("bad-recipient-phone", changed("recipient.phone", "0401234567"), "recipient.phone"),
    ("unknown-hub", changed("hub_id", "00000000-0000-0000-0000-000000000001"), "hub_id"),
    ("body-is-a-list", lambda: [order_payload()], "body"),
]


@pytest.mark.parametrize(
    ("build", "field"), [case[1:] for case in BODY_CASES], ids=[c[0] for c in BODY_CASES]
)
def test_bad_order_bodies_are_refused_naming_the_field(api, build, field):
    before = written()
    key = f"bad-{uuid.uuid4()}"
    response = api.post(URL, build(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field], error
    assert all(isinstance(m, str) and m for m in error["fields"][field])
    assert field in error["message"]
    assert written() == before
    # The key now holds this refusal (and only that), for a retry to get the same answer.
    record = IdempotencyRecord.objects.get(key=key)
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert (record.response_status, record.response_body) == (400, response.json())


@dataclass(frozen=True)
class Raw:
    """A request the JSON client would not send as such."""

    body: bytes | str = b""
    content_type: str = "application/json"
    headers: dict | None = None
    key: str | None = "raw-key-1"
    size: int | None = None  # a body of this many bytes (a valid JSON string)


def raw_order(**changes) -> bytes:
    return json.dumps(order_payload(**changes)).encode()


LIMIT = settings.API_MAX_BODY_BYTES
RAW_CASES = [
    # (id, request, status, field, code, claims the key)
    ("not-json", Raw(b'{"external_ref": "X",'), 400, "body", "parse_error", True),
    ("json-with-nan", Raw(b'{"external_ref": NaN}'), 400, "body", "parse_error", True),
    ("empty-body", Raw(b""), 400, "external_ref", "invalid", True),  # {}: each required field
    ("not-utf8", Raw('{"external_ref": "\u00e9"}'.encode("latin-1")), 400, "body", "parse_error", True),
    (
        "lat-overflows-to-infinity",
        Raw(raw_order().replace(b'"lat": 60.169,', b'"lat": 1e400,')),
        400,
        "pickup.lat",
        "invalid",
        True,
    ),
    (
        "form-content-type",
        Raw(b"external_ref=X", "application/x-www-form-urlencoded"),
        415,
        "Content-Type",
        "unsupported_media_type",
        True,
    ),
    (
        "text-content-type",
        Raw(raw_order(), "text/plain"),
        415,
        "Content-Type",
        "unsupported_media_type",
        True,
    ),
    (
        "key-with-spaces",
        Raw(raw_order(), key="my retry key"),
        400,
        "Idempotency-Key",
        "idempotency_key_malformed",
        False,
    ),
    (
        "key-of-300-chars",
        Raw(raw_order(), key="k" * 300),
        400,
        "Idempotency-Key",
        "idempotency_key_malformed",
        False,
    ),
    ("empty-key", Raw(raw_order(), key=""), 400, "Idempotency-Key", "idempotency_key_malformed", False),
    (
        "key-with-newline",
        Raw(raw_order(), key="abc\n"),
        400,
        "Idempotency-Key",
        "idempotency_key_malformed",
        False,
    ),
    (
        "key-with-non-ascii",
        Raw(raw_order(), key="cl\u00e9"),
        400,
        "Idempotency-Key",
        "idempotency_key_malformed",
        False,
    ),
    ("missing-key", Raw(raw_order(), key=None), 400, "Idempotency-Key", "idempotency_key_missing", False),
    ("body-over-the-limit", Raw(size=LIMIT + 1), 413, "body", "body_too_large", False),
    (
        "content-length-not-a-number",
        Raw(raw_order(), headers={"CONTENT_LENGTH": "lots"}),
        400,
        "Content-Length",
        "invalid_content_length",
        False,
    ),
]


def send(client, raw: Raw):
    body = raw.body
    if raw.size is not None:
        body = json.dumps({"notes": "x" * (raw.size - len('{"notes": ""}'))}).encode()
        assert len(body) == raw.size
    extra = dict(raw.headers or {})
    if raw.key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = raw.key
    return client.generic("POST", URL, body, content_type=raw.content_type, **extra)


@pytest.mark.parametrize(
    ("raw", "status", "field", "code", "claims_key"),
    [case[1:] for case in RAW_CASES],
    ids=[case[0] for case in RAW_CASES],
)
def test_bad_requests_are_refused_naming_the_part_at_fault(api, raw, status, field, code, claims_key):
    before = written()
    response = send(api, raw)
    assert response.status_code == status, response.content[:300]
    error = error_of(response)
    assert error["code"] == code
    assert field in error["fields"], error
    assert written() == before
    records = list(IdempotencyRecord.objects.all())
    if claims_key:
        assert [(r.key, r.state, r.response_status) for r in records] == [
            (raw.key, IdempotencyRecord.State.COMPLETED, status)
        ]
    else:
        assert records == []


def test_a_body_at_the_limit_is_read(api):
    """The limit is on size alone: a body of exactly API_MAX_BODY_BYTES gets to validation."""
    response = send(api, Raw(size=LIMIT))
    assert response.status_code == 400
    assert "external_ref" in error_of(response)["fields"]


def test_the_size_limit_also_guards_other_endpoints(api, org_a):
    big = json.dumps({"reason": "x" * LIMIT})
    response = api.generic(
        "POST",
        f"/api/v1/orders/{org_a.order.id}/cancel",
        big,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big-cancel",
    )
    assert response.status_code == 413
    org_a.order.refresh_from_db()
    assert org_a.order.status == "ASSIGNED"


SUBSCRIPTION = {"url": "https://oms.example/hooks", "event_types": ["order.*"]}
SUBSCRIPTION_CASES = [
    ("not-a-url", {**SUBSCRIPTION, "url": "oms hooks"}, "url"),
    ("no-event-types", {**SUBSCRIPTION, "event_types": []}, "event_types"),
    ("unknown-event-type", {**SUBSCRIPTION, "event_types": ["invoice.paid"]}, "event_types"),
    ("event-types-not-a-list", {**SUBSCRIPTION, "event_types": "order.*"}, "event_types"),
    ("secret-is-not-settable", {**SUBSCRIPTION, "secret": "whsec_mine"}, "secret"),
    ("missing-url", {"event_types": ["order.*"]}, "url"),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in SUBSCRIPTION_CASES], ids=[c[0] for c in SUBSCRIPTION_CASES]
)
def test_bad_webhook_subscriptions_are_refused_naming_the_field(api, body, field):
    before = written()
    response = api.post(
        "/api/v1/webhook-subscriptions",
        copy.deepcopy(body),
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"s-{uuid.uuid4()}",
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]
    assert written() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": "whsec_mine"}, "secret"),
        ({"event_types": ["payout.sent"]}, "event_types"),
        ({"url": "nope"}, "url"),
    ],
)
def test_bad_webhook_subscription_changes_are_refused_and_change_nothing(api, org_a, body, field):
    subscription = org_a.subscription
    response = api.patch(f"/api/v1/webhook-subscriptions/{subscription.id}", body, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]
    fresh = WebhookSubscription.objects.get(id=subscription.id)
    assert (fresh.url, fresh.event_types, fresh.secret) == (
        subscription.url,
        subscription.event_types,
        subscription.secret,
    )
