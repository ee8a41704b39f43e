from django.apps import AppConfig

DRIVER_EVENT_TYPES = {
    "driver.created": "A driver was added (an applicant until approved).",
    "driver.updated": "A driver's details changed (each field old -> new in `changes`).",
    "driver.status_changed": "A decision changed what a driver may do (approved, suspended...), with its reason.",
    "driver.online": "A driver went online.",
    "driver.offline": "A driver went offline.",
}


class FleetConfig(AppConfig):
    """An organisation's hubs, zones, drivers, vehicles and GPS pings."""

    name = "fleet"

    def ready(self) -> None:
        from core.events import register_event_types

        register_event_types(DRIVER_EVENT_TYPES)
