"""The production path: the on-commit enqueue and the due sweep, run by a real Celery worker.

Needs a Redis broker (REDIS_URL); CI runs these with Redis, and fails if it is down.
"""

import os
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections
from django.utils import timezone

from integrations.models import WebhookDelivery
from integrations.tasks import send_due_webhooks
from tests.conftest import order_payload, post
from tests.integrations.conftest import subscribe, wait_until

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run a real Celery worker",
    ),
    pytest.mark.django_db(transaction=True),
]


def _close_worker_connections(**kwargs) -> None:
    """The worker thread's database connection must not outlive the test database."""
    connections.close_all()


@pytest.fixture
def celery_worker(settings):
    """A worker thread on the Redis broker, consuming a queue of its own (no eager mode)."""
    from config.celery import app

    settings.BACKGROUND_JOBS = "celery"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue = f"fleetroot-test-{uuid.uuid4().hex[:12]}"
    saved = {name: app.conf[name] for name in ("task_always_eager", "task_default_queue")}
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=15):
            yield app
    finally:
        task_postrun.disconnect(_close_worker_connections)
        app.conf.update(saved)
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            channel.client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def test_the_first_try_is_queued_on_commit_and_sent_by_the_worker(api, org, receiver, celery_worker):
    assert not celery_worker.conf.task_always_eager
    subscribe(org, receiver, ["order.*"])

    response = post(api, "/api/v1/orders", order_payload("ORD-CELERY"))
    assert response.status_code == 201, response.json()

    # No sweep runs here: only the task queued when the order committed can send it.
    [request] = receiver.wait_for(1, timeout=20)
    assert request.signature_valid is True
    assert request.header("Fleetroot-Event-Type") == "order.created"
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SUCCEEDED).first()
    )
    assert delivery.attempts == 1
    assert request.header("Fleetroot-Delivery-Id") == str(delivery.id)


def test_retries_from_the_sweep_and_replays_go_through_the_worker(api, org, receiver, celery_worker):
    subscribe(org, receiver, ["order.*"])
    receiver.answer(503, 200)
    assert post(api, "/api/v1/orders", order_payload("ORD-RETRY")).status_code == 201
    receiver.wait_for(1, timeout=20)
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, attempts=1).first()
    )
    assert delivery.next_attempt_at > timezone.now()
    assert send_due_webhooks() == 0

    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
    assert send_due_webhooks() == 1  # with Celery the sweep queues; the worker sends
    receiver.wait_for(2, timeout=20)
    wait_until(lambda: WebhookDelivery.objects.filter(id=delivery.id, status="succeeded").exists())

    replay = post(api, f"/api/v1/webhook-deliveries/{delivery.id}/replay", {})
    assert replay.status_code == 202, replay.json()
    third = receiver.wait_for(3, timeout=20)[2]
    assert third.header("Fleetroot-Attempt") == "3"
    wait_until(
        lambda: WebhookDelivery.objects.filter(id=delivery.id, status="succeeded", attempts=3).exists()
    )
    time.sleep(0.2)
    assert len(receiver.requests) == 3
