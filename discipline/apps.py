from django.apps import AppConfig

DISCIPLINE_EVENT_TYPES = {
    "discipline.rules_updated": "An organisation's discipline rules changed (a new version).",
    "discipline.decision_made": "A discipline rule decided about a driver (warning, suspension or human "
    "review), with the rule, its version and the explanation the driver reads.",
    "discipline.appealed": "A driver appealed a discipline decision; a person reviews it.",
    "discipline.review_opened": "A discipline decision went back to a person: a lateness it counted was "
    "excused afterwards.",
    "discipline.review_resolved": "A person lifted or confirmed a discipline decision, with the reason.",
    "discipline.suspension_ended": "A suspension by a discipline rule ran its length; the driver is active again.",
}


class DisciplineConfig(AppConfig):
    """Automated discipline: versioned rules per organisation, their decisions about drivers
    (explained, in the driver's decision record), appeals and human reviews."""

    name = "discipline"

    def ready(self) -> None:
        from core.events import register_event_types
        from discipline import receivers  # noqa: F401  (weighs the rules as outcomes arrive)
        from discipline.push import decision_for_driver
        from dispatch.push import register_driver_object

        register_event_types(DISCIPLINE_EVENT_TYPES)
        register_driver_object("decision", decision_for_driver)
