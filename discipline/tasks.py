"""Celery tasks of discipline: thin wrappers around the services (in-process without Celery)."""

from celery import shared_task

from discipline import services


@shared_task(name="discipline.end_due_suspensions", ignore_result=True)
def end_due_suspensions() -> int:
    """Reinstate drivers whose suspension ran its length, with the reason."""
    return services.end_due_suspensions()
