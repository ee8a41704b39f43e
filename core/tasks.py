"""Celery tasks of the platform plumbing."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.models import IdempotencyRecord


@shared_task(name="core.purge_expired_idempotency_records", ignore_result=True)
def purge_expired_idempotency_records() -> int:
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
