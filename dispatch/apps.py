from django.apps import AppConfig


class DispatchConfig(AppConfig):
    """Orders and their lifecycle, offers, routes and stops, proof of delivery."""

    name = "dispatch"
