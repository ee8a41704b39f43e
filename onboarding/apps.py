from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    """Driver applications and verification. The domain arrives with its own issue; today a
    driver's onboarding decision is a status change recorded by fleet.services."""

    name = "onboarding"
