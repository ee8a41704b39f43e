"""Celery tasks of dispatch."""

from celery import shared_task

from dispatch.services.offers import expire_due_offers as expire_offers


@shared_task(name="dispatch.expire_due_offers", ignore_result=True)
def expire_due_offers() -> int:
    """Offers past their expiry lapse and their orders go back to the pool (every few seconds)."""
    return expire_offers()
