"""Idempotency-Key on POST: a retry is applied once and gets the first answer."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import DomainEvent, IdempotencyRecord
from dispatch.api import views as order_views
from dispatch.models import Order, OrderTransition
from identity.services import create_api_key
from tests.api.conftest import client_for, error_of, session_client
from tests.conftest import order_payload

URL = "/api/v1/orders"


def send(client, body, key, url=URL):
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_get_the_first_answer_and_one_order(api, org):
    first = send(api, order_payload(ref="IDEM-1"), "key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    again = send(api, order_payload(ref="IDEM-1"), "key-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.filter(organisation=org).count() == 1
    assert DomainEvent.objects.filter(event_type="order.created").count() == 1
    record = IdempotencyRecord.objects.get(key="key-1")
    assert record.organisation == org and record.state == IdempotencyRecord.State.COMPLETED


def test_the_same_json_written_differently_is_the_same_body(api, org):
    body = order_payload(ref="IDEM-2")
    assert send(api, body, "key-2").status_code == 201
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = api.generic("POST", URL, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-2")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(api, org):
    first = send(api, order_payload(ref="IDEM-3"), "key-3")
    response = send(api, order_payload(ref="IDEM-3", tip_minor=999), "key-3")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "idempotency_key_reused"
    assert list(error["fields"]) == ["Idempotency-Key"]
    assert Order.objects.count() == 1
    assert Order.objects.get().tip_minor == 200
    # The first answer is still the one a true retry gets.
    assert send(api, order_payload(ref="IDEM-3"), "key-3").json() == first.json()


def test_the_same_key_on_another_endpoint_is_refused(api, org_a):
    assert send(api, {"reason": "Gone."}, "key-4", url=f"{URL}/{org_a.order.id}/cancel").status_code == 200
    response = send(api, {"reason": "Gone."}, "key-4", url=URL)
    assert response.status_code == 422
    assert "Idempotency-Key" in error_of(response)["fields"]


def test_keys_are_private_to_each_caller(org, api, other_api):
    second_key = client_for(create_api_key(organisation=org, name="second"))
    assert send(api, order_payload(ref="IDEM-5"), "shared").status_code == 201
    # Another key of the same organisation runs its own request: the reference is taken.
    theirs = send(second_key, order_payload(ref="IDEM-5"), "shared")
    assert theirs.status_code == 400
    assert "Idempotent-Replayed" not in theirs
    assert list(error_of(theirs)["fields"]) == ["external_ref"]
    # Another organisation's key with the same key and body creates its own order.
    other = send(other_api, order_payload(ref="IDEM-5"), "shared")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert Order.objects.filter(external_ref="IDEM-5").count() == 2
    assert IdempotencyRecord.objects.filter(key="shared").count() == 3


def test_a_session_user_may_send_a_key_and_gets_replays_too(dispatcher):
    client = session_client(dispatcher)
    assert client.post(URL, order_payload(ref="WEB-1"), format="json").status_code == 201
    first = send(client, order_payload(ref="WEB-2"), "web-key")
    again = send(client, order_payload(ref="WEB-2"), "web-key")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.filter(external_ref="WEB-2").count() == 1


def test_a_refusal_is_replayed_too(api):
    bad = order_payload(ref="IDEM-6")
    bad["pickup"]["lat"] = 91
    first = send(api, bad, "key-6")
    assert first.status_code == 400
    again = send(api, bad, "key-6")
    assert again.status_code == 400 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # The key is spent on that request: a corrected body needs a new key.
    corrected = send(api, order_payload(ref="IDEM-6"), "key-6")
    assert corrected.status_code == 422
    assert send(api, order_payload(ref="IDEM-6"), "key-6b").status_code == 201


def test_a_server_error_is_not_stored_so_a_retry_runs_again(api_key, monkeypatch):
    client = client_for(api_key)
    client.raise_request_exception = False
    real = order_views.create_order
    monkeypatch.setattr(order_views, "create_order", lambda **kwargs: 1 / 0)
    assert send(client, order_payload(ref="IDEM-7"), "key-7").status_code == 500
    assert not IdempotencyRecord.objects.exists()
    assert not Order.objects.exists()
    monkeypatch.setattr(order_views, "create_order", real)
    retry = send(client, order_payload(ref="IDEM-7"), "key-7")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry


def test_a_key_expires_after_the_ttl(api):
    assert send(api, order_payload(ref="IDEM-8"), "key-8").status_code == 201
    record = IdempotencyRecord.objects.get(key="key-8")
    # Just inside the TTL the key is still bound to its body.
    inside = timezone.now() - settings.IDEMPOTENCY_KEY_TTL + timedelta(minutes=1)
    IdempotencyRecord.objects.filter(id=record.id).update(created_at=inside)
    assert send(api, order_payload(ref="IDEM-8b"), "key-8").status_code == 422
    # Past it, the key is new again: the request runs.
    past = timezone.now() - settings.IDEMPOTENCY_KEY_TTL - timedelta(seconds=1)
    IdempotencyRecord.objects.filter(id=record.id).update(created_at=past)
    fresh = send(api, order_payload(ref="IDEM-8b"), "key-8")
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh
    assert set(Order.objects.values_list("external_ref", flat=True)) == {"IDEM-8", "IDEM-8b"}
    assert send(api, order_payload(ref="IDEM-8b"), "key-8")["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.filter(key="key-8").count() == 1


def _in_progress(org, api_key, key, body, lease_expires_at):
    return IdempotencyRecord.objects.create(
        organisation=org,
        caller=f"key:{api_key.api_key.pk}",
        key=key,
        request_fingerprint=_fingerprint_of(body),
        lease_expires_at=lease_expires_at,
    )


def test_a_request_still_running_makes_a_retry_wait(api, org, api_key):
    body = order_payload(ref="IDEM-9")
    _in_progress(org, api_key, "key-9", body, timezone.now() + timedelta(seconds=30))
    response = send(api, body, "key-9")
    assert response.status_code == 409
    assert 1 <= int(response["Retry-After"]) <= 31
    error = error_of(response)
    assert error["code"] == "idempotency_request_in_progress"
    assert list(error["fields"]) == ["Idempotency-Key"]
    assert not Order.objects.exists()


def test_a_crashed_request_blocks_its_key_only_until_its_lease_runs_out(api, org, api_key):
    """A request whose process died leaves its key IN_PROGRESS; once the lease has run out a
    retry takes the key over, runs once, and later retries replay its answer."""
    body = order_payload(ref="IDEM-10")
    _in_progress(org, api_key, "key-10", body, timezone.now() - timedelta(seconds=1))
    first = send(api, body, "key-10")
    assert first.status_code == 201
    again = send(api, body, "key-10")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Order.objects.filter(external_ref="IDEM-10").count() == 1
    record = IdempotencyRecord.objects.get(key="key-10")
    assert record.state == IdempotencyRecord.State.COMPLETED and record.lease_expires_at is None


def _fingerprint_of(body) -> str:
    """The fingerprint the server computes for a POST of this body to URL."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from core.api.idempotency import _fingerprint

    raw = RequestFactory().post(URL, json.dumps(body), content_type="application/json")
    return _fingerprint(Request(raw))


def test_cancel_with_a_key_is_replayed(api, org_a):
    url = f"{URL}/{org_a.order.id}/cancel"
    first = send(api, {"reason": "Customer left."}, "cancel-2", url=url)
    again = send(api, {"reason": "Customer left."}, "cancel-2", url=url)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert OrderTransition.objects.filter(order=org_a.order, action="cancel").count() == 1
    # A new key is a new request: the order is already cancelled.
    assert send(api, {"reason": "Customer left."}, "cancel-3", url=url).status_code == 409


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_order(org, api_key, monkeypatch):
    """The second request arrives while the first is still running: it is told to retry
    (409) or, if it had to wait for the first to finish, gets its answer. Never two orders."""
    real = order_views.create_order

    def slow_create_order(**kwargs):
        time.sleep(0.3)
        return real(**kwargs)

    monkeypatch.setattr(order_views, "create_order", slow_create_order)
    body = order_payload(ref="RACE-1")
    barrier = threading.Barrier(2)
    responses = []

    def request():
        client = client_for(api_key)
        try:
            barrier.wait(timeout=10)
            responses.append(send(client, body, "race-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(responses) == 2
    assert Order.objects.filter(external_ref="RACE-1").count() == 1
    created = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    assert len(created) == 1
    other = next(r for r in responses if r is not created[0])
    if other.status_code == 409:
        assert error_of(other)["code"] == "idempotency_request_in_progress"
    else:
        assert other.status_code == 201 and other["Idempotent-Replayed"] == "true"
        assert other.json() == created[0].json()
    # Once the first has finished, a retry gets its answer.
    retry = send(client_for(api_key), body, "race-key")
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == created[0].json()


def test_an_api_key_must_send_a_key_but_a_get_needs_none(api):
    assert api.get(URL).status_code == 200
    response = api.post(URL, order_payload(ref="NO-KEY"), format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "idempotency_key_missing"
    assert not Order.objects.exists()


def test_anonymous_posts_are_refused_before_any_key_is_claimed(db):
    response = send(APIClient(), order_payload(ref="ANON"), "anon-key")
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()
