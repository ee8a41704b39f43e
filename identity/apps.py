from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Who is who: organisations and their clients, users and roles, API keys."""

    name = "identity"
