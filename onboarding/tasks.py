"""Celery tasks of onboarding: thin wrappers around the services (eager in the embedded
stack; the two watches also run from core.scheduler without Celery)."""

from datetime import timedelta

from celery import shared_task

from onboarding import screening, selectors, services
from onboarding.models import ApplicationStatus

STUCK_AFTER = timedelta(minutes=10)
SCREENING_POLL_AFTER = timedelta(hours=6)


@shared_task(name="onboarding.run_application_pipeline", ignore_result=True)
def run_application_pipeline(application_id: str) -> str:
    """The checks and decision of a submitted application; a no-op once it has moved on. A
    failing run (a provider down too) is recorded by the service and tried again by
    resume_pipelines, a bounded number of times."""
    return services.run_pipeline(application_id=application_id).status


@shared_task(name="onboarding.resume_pipelines", ignore_result=True)
def resume_pipelines() -> int:
    """Queue again the pipelines of applications left SUBMITTED (a worker died, a check
    crashed: services.run_pipeline bounds the runs, then a person reviews), and ask the provider about reports pending for long (a lost webhook): each run is
    a no-op once the application has moved on."""
    stuck = selectors.stuck_application_ids(older_than=STUCK_AFTER)
    for application_id in stuck:
        run_application_pipeline.delay(str(application_id))
    waiting = selectors.stuck_application_ids(
        older_than=SCREENING_POLL_AFTER, status=ApplicationStatus.SCREENING
    )
    for application_id in waiting:
        refresh_screening.delay(str(application_id))
    return len(stuck) + len(waiting)


@shared_task(
    name="onboarding.refresh_screening",
    ignore_result=True,
    autoretry_for=(screening.ScreeningError,),
    max_retries=3,
)
def refresh_screening(application_id: str) -> str:
    return services.refresh_screening(application_id=application_id)


@shared_task(name="onboarding.watch_document_expiry", ignore_result=True)
def watch_document_expiry() -> dict:
    return services.watch_document_expiry()


@shared_task(name="onboarding.purge_biometrics", ignore_result=True)
def purge_biometrics() -> int:
    return services.purge_biometrics()
