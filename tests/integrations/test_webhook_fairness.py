"""Fair delivery between organisations: one tenant's dead receivers never hold back another's."""

import time

import pytest

from integrations.models import WebhookDelivery
from integrations.tasks import send_due_webhooks
from integrations.webhooks.sweep import due_deliveries
from tests.integrations.conftest import HANG, subscribe
from tests.integrations.test_webhook_delivery import emit


@pytest.mark.django_db
def test_a_sweep_takes_each_organisations_oldest_in_turn_and_at_most_its_share(
    org, other_org, receiver, settings
):
    settings.WEBHOOK_SWEEP_PER_ORG = 3
    subscribe(org, receiver, ["order.*"])
    for _ in range(5):
        emit(org)  # org's are all older than other_org's
    subscribe(other_org, receiver, ["order.*"])
    emit(other_org)
    emit(other_org)
    due = due_deliveries()
    assert [organisation_id for _, organisation_id in due] == [
        org.id,
        other_org.id,
        org.id,
        other_org.id,
        org.id,
    ]
    sequences = [WebhookDelivery.objects.get(id=delivery_id).event.sequence for delivery_id, _ in due]
    assert sequences == [1, 1, 2, 2, 3]  # each organisation's oldest first
    assert len(due_deliveries(limit=2)) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("workers", "bound"), [(8, 0.8), (1, 1.8)])
def test_one_organisations_hanging_receivers_do_not_delay_anothers_webhook(
    org, other_org, receiver, second_receiver, settings, workers, bound
):
    """Org A: 10 subscriptions to a receiver that never answers. Org B: one, healthy.

    Before, one sweep sent A's ten (older) deliveries first, one after another, each waiting
    out its timeout: B's webhook came after all of them. Now B's comes in the first turn:
    at once on the worker threads, or after at most one of A's tries on a single thread.
    """
    settings.WEBHOOK_SWEEP_WORKERS = workers
    settings.WEBHOOK_SWEEP_PER_ORG = 4
    settings.WEBHOOK_ATTEMPT_DEADLINE_SECONDS = 1.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    receiver.hang_seconds = 30
    receiver.answer(*[HANG] * 20)
    for n in range(10):
        subscribe(org, receiver, ["order.*"], description=f"dead {n}")
    emit(org)
    subscribe(other_org, second_receiver, ["order.*"])
    emit(other_org)

    started = time.monotonic()
    assert send_due_webhooks() == 4 + 1  # A's share of this sweep, and B's one
    took = time.monotonic() - started

    [b_request] = second_receiver.wait_for(1, timeout=1)
    assert b_request.received_at - started < bound
    b_delivery = WebhookDelivery.objects.get(organisation=other_org)
    assert b_delivery.status == WebhookDelivery.Status.SUCCEEDED
    a_tries = WebhookDelivery.objects.filter(organisation=org, attempts=1)
    assert a_tries.count() == 4 and all("Deadline exceeded" in d.last_error for d in a_tries)
    # The sweep itself is bounded: A's four tries, two at a time (or one by one on one thread).
    assert took < (2.8 if workers > 1 else 4.8)
