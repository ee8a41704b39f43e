"""Sending deliveries to a real local receiver: retries, back-off, errors, claims, SSRF."""

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from core.actors import Actor
from core.events import record_event
from integrations import services
from integrations.models import WebhookAttempt, WebhookDelivery
from integrations.tasks import send_due_webhooks
from integrations.webhooks import delivery as webhook_delivery
from integrations.webhooks.delivery import RESPONSE_BODY_LOG_LIMIT, backoff_seconds
from integrations.webhooks.signing import SIGNATURE_HEADER
from tests.integrations.conftest import CLOSE, HANG, Reply, subscribe, unused_port


def emit(organisation, event_type="order.created") -> None:
    """Record an event the way services do: inside a transaction, fanned out by the receiver."""
    with transaction.atomic():
        record_event(
            organisation=organisation,
            event_type=event_type,
            subject_type="order",
            subject_id=uuid.uuid4(),
            actor=Actor.system("test"),
            payload={"status": event_type.split(".", 1)[1].upper()},
        )


def make_due(delivery: WebhookDelivery) -> None:
    """Move time on: the next try is due now."""
    WebhookDelivery.objects.filter(id=delivery.id).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def attempt_log(delivery):
    return list(
        WebhookAttempt.objects.filter(delivery=delivery).values_list(
            "number", "response_status", "response_body", "error"
        )
    )


# --- back-off -------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [10.0, 0.5])
def test_backoff_doubles_with_twenty_percent_jitter(settings, base):
    settings.WEBHOOK_RETRY_BASE_SECONDS = base
    for attempts_made in range(1, 9):
        nominal = base * 2 ** (attempts_made - 1)
        samples = [backoff_seconds(attempts_made) for _ in range(300)]
        assert nominal * 0.8 <= min(samples) <= max(samples) <= nominal * 1.2
        assert max(samples) - min(samples) > nominal * 0.2  # jittered, not constant
        mean = sum(samples) / len(samples)
        assert nominal * 0.95 < mean < nominal * 1.05


def test_backoff_is_capped_and_never_overflows(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10.0
    for attempts_made in (20, 64, 2000, 32767):
        assert 6 * 3600 * 0.8 <= backoff_seconds(attempts_made) <= 6 * 3600 * 1.2


# --- retries --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_try_is_retried_after_the_backoff_and_logged(org, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10.0
    subscribe(org, receiver, ["order.*"])
    receiver.answer(Reply(500, b"database down"), Reply(200, b"thanks"))
    emit(org)
    delivery = WebhookDelivery.objects.get()

    before = timezone.now()
    assert send_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_response_status == 500
    assert delivery.last_error == "HTTP 500"
    delay = (delivery.next_attempt_at - before).total_seconds()
    assert 10.0 * 0.8 - 1 <= delay <= 10.0 * 1.2 + 1

    # Not due yet: nothing is sent, however often the sweep runs.
    assert send_due_webhooks() == 0
    assert webhook_delivery.attempt(delivery.id) is None
    assert len(receiver.requests) == 1

    make_due(delivery)
    assert send_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 2
    assert delivery.last_response_status == 200
    assert delivery.last_error == ""
    assert delivery.next_attempt_at is None

    first, second = receiver.wait_for(2)
    assert [first.header("Fleetroot-Attempt"), second.header("Fleetroot-Attempt")] == ["1", "2"]
    assert first.body == second.body  # a retry sends the same event
    assert first.header("Fleetroot-Event-Id") == second.header("Fleetroot-Event-Id")
    assert attempt_log(delivery) == [(1, 500, "database down", ""), (2, 200, "thanks", "")]
    logged = WebhookAttempt.objects.filter(delivery=delivery).first().request_headers
    assert logged["Fleetroot-Delivery-Id"] == str(delivery.id)
    assert SIGNATURE_HEADER not in logged


@pytest.mark.django_db
def test_after_max_attempts_the_delivery_fails_and_is_never_sent_again(org, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    subscribe(org, receiver, ["order.*"])
    receiver.answer(500, 502, 503, 200)
    emit(org)
    delivery = WebhookDelivery.objects.get()
    for number in range(1, 4):
        if number > 1:
            make_due(delivery)
        assert send_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is None
    assert delivery.last_response_status == 503
    assert [n for n, *_ in attempt_log(delivery)] == [1, 2, 3]

    make_due(delivery)  # even with a due time, a failed delivery is not picked up
    assert send_due_webhooks() == 0
    assert webhook_delivery.attempt(delivery.id) is None
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_a_redirect_is_not_followed_and_counts_as_a_failure(org, receiver):
    subscribe(org, receiver, ["order.*"])
    receiver.answer(Reply(302, b""))
    emit(org)
    send_due_webhooks()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_response_status == 302
    assert len(receiver.requests) == 1


# --- errors are logged, never crash, never leave a delivery stuck ----------------------------


def assert_logged_error(delivery, *fragments):
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING  # will be retried
    assert delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now()
    assert delivery.last_response_status is None
    [(number, status, body, error)] = attempt_log(delivery)
    assert (number, status, body) == (1, None, "")
    for fragment in fragments:
        assert fragment in error
    assert delivery.last_error == error


@pytest.mark.django_db
def test_a_receiver_that_hangs_is_logged_as_a_timeout(org, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    subscribe(org, receiver, ["order.*"])
    receiver.answer(HANG)
    emit(org)
    started = time.monotonic()
    assert send_due_webhooks() == 1
    assert time.monotonic() - started < 2
    assert_logged_error(WebhookDelivery.objects.get(), "Timeout")
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_receiver_that_closes_the_connection_is_logged(org, receiver):
    subscribe(org, receiver, ["order.*"])
    receiver.answer(CLOSE)
    emit(org)
    assert send_due_webhooks() == 1
    assert_logged_error(WebhookDelivery.objects.get(), "RemoteProtocolError")


@pytest.mark.django_db
def test_a_refused_connection_is_logged(org, receiver):
    receiver.url = f"http://127.0.0.1:{unused_port()}/hooks"
    subscribe(org, receiver, ["order.*"])
    emit(org)
    assert send_due_webhooks() == 1
    assert_logged_error(WebhookDelivery.objects.get(), "ConnectError")


@pytest.mark.django_db
def test_an_unresolvable_host_is_logged(org, receiver):
    receiver.url = "http://no-such-host.invalid/hooks"
    subscribe(org, receiver, ["order.*"])
    emit(org)
    assert send_due_webhooks() == 1
    assert_logged_error(WebhookDelivery.objects.get(), "no-such-host.invalid")


@pytest.mark.django_db
def test_a_url_the_http_client_cannot_use_is_logged_not_stuck_sending(org, receiver):
    """A URL that slipped past validation (admin, old row) must not wedge the delivery."""
    subscription = subscribe(org, receiver, ["order.*"])
    type(subscription).objects.filter(id=subscription.id).update(url="http://example.com:port/x")
    emit(org)
    assert send_due_webhooks() == 1
    assert_logged_error(WebhookDelivery.objects.get(), "Invalid URL")


@pytest.mark.django_db
def test_a_huge_response_body_is_cut_and_nul_bytes_are_dropped(org, receiver):
    """The log keeps a bounded, storable text (PostgreSQL text cannot hold NUL)."""
    subscribe(org, receiver, ["order.*"])
    receiver.answer(Reply(500, b"bad\x00thing"), Reply(200, b"x" * 5_000_000))
    emit(org)
    delivery = WebhookDelivery.objects.get()
    send_due_webhooks()
    make_due(delivery)
    send_due_webhooks()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    first, second = WebhookAttempt.objects.filter(delivery=delivery)
    assert first.response_body == "badthing"
    assert second.response_body == "x" * RESPONSE_BODY_LOG_LIMIT


# --- claims ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_attempting_the_same_delivery_send_it_once(org, receiver):
    subscribe(org, receiver, ["order.*"])
    receiver.answer(Reply(200, b"once"))
    emit(org)
    delivery_id = WebhookDelivery.objects.get().id
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(5)
            results.append(webhook_delivery.attempt(delivery_id))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert sorted(result is None for result in results) == [False, True, True, True]
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.SUCCEEDED, 1)
    assert attempt_log(delivery) == [(1, 200, "once", "")]


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_worker_is_taken_over_later(org, receiver):
    subscribe(org, receiver, ["order.*"])
    emit(org)
    delivery = WebhookDelivery.objects.get()
    # A worker claimed it (attempt 1) and died before logging anything.
    WebhookDelivery.objects.filter(id=delivery.id).update(
        status=WebhookDelivery.Status.SENDING, attempts=1, next_attempt_at=timezone.now()
    )
    assert send_due_webhooks() == 0  # still within the claim: maybe it is only slow
    WebhookDelivery.objects.filter(id=delivery.id).update(
        next_attempt_at=timezone.now() - webhook_delivery.STALE_CLAIM_AFTER - timedelta(seconds=1)
    )
    assert send_due_webhooks() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.SUCCEEDED, 2)
    assert receiver.wait_for(1)[0].header("Fleetroot-Attempt") == "2"


@pytest.mark.django_db
def test_a_deactivated_subscription_pauses_its_pending_deliveries(org, receiver):
    subscription = subscribe(org, receiver, ["order.*"])
    emit(org)
    subscription.is_active = False
    subscription.save()
    assert send_due_webhooks() == 0
    assert webhook_delivery.attempt(WebhookDelivery.objects.get().id) is None
    assert receiver.requests == []
    subscription.is_active = True
    subscription.save()
    assert send_due_webhooks() == 1
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED


# --- SSRF guard -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_private_targets_are_refused_and_logged_without_a_request(org, receiver, settings, host):
    subscription = subscribe(org, receiver, ["order.*"])
    port = receiver.url.split(":")[2].split("/")[0]
    type(subscription).objects.filter(id=subscription.id).update(url=f"http://{host}:{port}/hooks")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    emit(org)
    assert send_due_webhooks() == 1
    assert_logged_error(WebhookDelivery.objects.get(), "private")
    time.sleep(0.1)
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_host_name_target_keeps_its_host_header(org, receiver):
    """The connection goes to the address that was checked; the request still names the host."""
    port = receiver.url.split(":")[2].split("/")[0]
    receiver.url = f"http://localhost:{port}/hooks"
    subscribe(org, receiver, ["order.*"])
    emit(org)
    assert send_due_webhooks() == 1
    [request] = receiver.wait_for(1)
    assert request.header("Host") == f"localhost:{port}"
    assert request.signature_valid is True
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED


# --- on-commit enqueue with Celery (eager here; a real worker in test_webhook_celery) --------


@pytest.mark.django_db
def test_with_celery_the_first_try_is_enqueued_when_the_transaction_commits(
    org, receiver, settings, django_capture_on_commit_callbacks
):
    from config.celery import app

    settings.BACKGROUND_JOBS = "celery"
    subscribe(org, receiver, ["order.*"])
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            emit(org)
        assert receiver.requests == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        app.conf.task_always_eager = eager
    receiver.wait_for(1)
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_fails_neither_the_request_nor_the_delivery(api, org, receiver, settings):
    """The first try is queued after the commit; if the broker is down the sweep sends it."""
    from celery import Celery

    from config.celery import app
    from tests.conftest import order_payload, post

    settings.BACKGROUND_JOBS = "celery"
    subscribe(org, receiver, ["order.*"])
    broker_down = Celery("broker-down", broker=f"redis://127.0.0.1:{unused_port()}/0", set_as_current=False)
    broker_down.conf.task_always_eager = False
    broker_down.set_current()
    try:
        response = post(api, "/api/v1/orders", order_payload("ORD-NO-BROKER"))
    finally:
        app.set_current()
    assert response.status_code == 201, response.json()
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
    assert receiver.requests == []

    settings.BACKGROUND_JOBS = "in-process"  # the sweep, as the beat would run it
    assert send_due_webhooks() == 1
    assert receiver.wait_for(1)[0].signature_valid is True


# --- the event sequence header --------------------------------------------------------------


@pytest.mark.django_db
def test_each_delivery_carries_the_events_sequence_so_a_receiver_sees_gaps_and_repeats(org, receiver):
    subscribe(org, receiver, ["order.created"])
    emit(org)
    emit(org, "order.cancelled")  # numbered too, though this subscription does not hear it
    emit(org)
    assert send_due_webhooks() == 2
    received = sorted(
        receiver.wait_for(2), key=lambda request: int(request.header("Fleetroot-Event-Sequence"))
    )
    assert [request.header("Fleetroot-Event-Sequence") for request in received] == ["1", "3"]
    assert [json.loads(request.body)["sequence"] for request in received] == [1, 3]

    replayed = WebhookDelivery.objects.get(event__sequence=3)
    services.replay_delivery(delivery=replayed)
    assert send_due_webhooks() == 1
    again = receiver.wait_for(3)[2]
    assert again.header("Fleetroot-Event-Sequence") == "3"  # a repeat: same number, same event id
    assert again.header("Fleetroot-Event-Id") == received[1].header("Fleetroot-Event-Id")
