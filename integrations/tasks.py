"""Celery tasks: thin, idempotent wrappers around webhook delivery."""

import logging
from collections.abc import Iterable

from celery import shared_task
from django.conf import settings

from integrations.webhooks import delivery, sweep

logger = logging.getLogger(__name__)


@shared_task(name="integrations.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    delivery.attempt(delivery_id)


def enqueue_deliveries(delivery_ids: Iterable) -> None:
    """Queue first tries (on commit). Best effort: the due sweep sends what is not queued.

    It runs after the commit, so raising (broker down) would turn a request whose writes
    are already committed into an error answer.
    """
    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(str(delivery_id))
        except Exception:
            logger.warning(
                "Could not queue webhook delivery %s; the due sweep will send it.", delivery_id, exc_info=True
            )


@shared_task(name="integrations.send_due_webhooks", ignore_result=True)
def send_due_webhooks() -> int:
    """Beat task: send what is due (first tries and retries), fairly between organisations.

    With Celery the fair order is the queue's order; in-process, sweep.send_fairly sends.
    """
    due = sweep.due_deliveries()
    if settings.BACKGROUND_JOBS == "celery":
        enqueue_deliveries([delivery_id for delivery_id, _ in due])
    else:
        sweep.send_fairly(due)
    return len(due)
