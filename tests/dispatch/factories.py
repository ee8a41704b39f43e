"""Build service inputs from the API-shaped payloads in tests/conftest.py."""

from dispatch.api.serializers import OrderCreateSerializer
from dispatch.services.orders import OrderInput


def order_input(payload: dict) -> OrderInput:
    serializer = OrderCreateSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    return serializer.to_order_input()


def suggest_to(driver, *, lat=60.1699, lon=24.9384, expected=3.0, incentive_minor=0, ttl_minutes=10):
    """A pending reposition suggestion for a driver, stored by the service as a run would."""
    from django.utils import timezone

    from core.actors import Actor
    from dispatch.engine.forecast import ForecastConfig, SlotForecast, cell_centre, cell_of
    from dispatch.engine.reposition import Move
    from dispatch.engine.rules import Reposition
    from dispatch.services.repositioning import make_suggestion

    cell = cell_of(lat, lon, 8)
    centre = cell_centre(cell)
    now = timezone.now().timestamp()
    forecast = SlotForecast(now, now + 1800, {cell: expected}, 0, 4, 12, ForecastConfig())
    move = Move(str(driver.id), cell, *centre, 1500.0, expected, 0.0, 1.0, "About 3.0 orders are expected.")
    return make_suggestion(
        organisation=driver.organisation,
        driver=driver,
        move=move,
        forecast=forecast,
        settings=Reposition(enabled=True, incentive_minor=incentive_minor, ttl_minutes=ttl_minutes),
        actor=Actor.system("test-predictive-dispatch"),
    )
