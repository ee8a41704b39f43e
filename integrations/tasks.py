"""Celery tasks: thin, idempotent wrappers around the webhook and idempotency services."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from integrations.models import IdempotencyRecord
from integrations.webhooks import delivery


@shared_task(name="integrations.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    delivery.attempt(delivery_id)


@shared_task(name="integrations.send_due_webhooks", ignore_result=True)
def send_due_webhooks() -> int:
    """Beat task: send every delivery whose next attempt is due (first tries and retries)."""
    ids = delivery.due_delivery_ids()
    for delivery_id in ids:
        if settings.BACKGROUND_JOBS == "celery":
            deliver_webhook.delay(str(delivery_id))
        else:
            delivery.attempt(delivery_id)
    return len(ids)


@shared_task(name="integrations.purge_expired_idempotency_records", ignore_result=True)
def purge_expired_idempotency_records() -> int:
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
