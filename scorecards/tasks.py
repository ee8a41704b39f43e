"""Celery tasks of the scorecards: thin, idempotent."""

from celery import shared_task

from scorecards import services


@shared_task(name="scorecards.snapshot_scorecards", ignore_result=True)
def snapshot_scorecards() -> int:
    """Beat (hourly): move every scorecard's windows on to today and keep the day's snapshot."""
    return services.snapshot_scorecards()


@shared_task(name="scorecards.rescore_organisation", ignore_result=True)
def rescore_organisation(organisation_id: str) -> int:
    """After an organisation's score settings changed: recompute its drivers' scores."""
    return services.rescore_organisation(organisation_id=organisation_id)
