from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """What order management systems use: API keys, idempotent requests, signed webhooks."""

    name = "integrations"

    def ready(self) -> None:
        from integrations import receivers  # noqa: F401  (connects the webhook fan-out)
