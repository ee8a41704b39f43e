from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo city: its seed, simulator, street extract and `run_demo`. No domain app imports it."""

    name = "demo"
