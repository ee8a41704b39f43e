from django.apps import AppConfig


class ScorecardsConfig(AppConfig):
    """Driver scorecards: delivery outcomes and their excuses, offer answers, service times,
    ratings, rolling windows, the performance score that matching reads."""

    name = "scorecards"

    def ready(self) -> None:
        from core.events import register_event_types

        register_event_types(
            {
                "delivery.excused": "A dispatcher excused a driver's late delivery, with a reason; "
                "it no longer counts against their on-time rate.",
                "rating.received": "A recipient rated a delivery (stars; the comment is not in the event).",
                "scorecard.settings_updated": "An organisation's performance score settings changed (old -> new).",
            }
        )
        from scorecards import receivers  # noqa: F401  (connects the scorecards to the domain events)
