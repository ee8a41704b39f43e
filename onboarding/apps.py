from django.apps import AppConfig

APPLICATION_EVENT_TYPES = {
    "application.started": "An applicant signed up through the organisation's sign-up link.",
    "application.submitted": "An applicant submitted their application; the checks run.",
    "application.pipeline_failed": "A run of the checks failed (its error class); it is tried again, then reviewed.",
    "application.decided": "The checks decided (approved, in review or denied), with reason codes.",
    "application.appealed": "An applicant contested a denial; a human review is queued.",
    "application.reviewed": "A reviewer approved or denied an application, with the reason.",
}


class OnboardingConfig(AppConfig):
    """Driver applications: documents, the verification pipeline, decisions and reviews."""

    name = "onboarding"

    def ready(self) -> None:
        from core.events import register_event_types

        register_event_types(APPLICATION_EVENT_TYPES)
