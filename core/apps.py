from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: actors, the domain event log, API conventions, geo helpers."""

    name = "core"
    verbose_name = "Platform"
