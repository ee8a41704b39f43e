from django.apps import AppConfig


class FleetConfig(AppConfig):
    """Organisations and their people, hubs, zones, drivers, vehicles and GPS pings."""

    name = "fleet"
