"""The event types a webhook subscription can name: the ones services actually record.

Order events are `order.<status>` for every status an order can reach (transitions and
overrides both emit them); driver events come from fleet.services.
"""

from functools import cache

DRIVER_EVENT_TYPES = ("driver.status_changed", "driver.online", "driver.offline")


@cache
def event_types() -> frozenset[str]:
    from dispatch.models import OrderStatus

    return frozenset({f"order.{status.lower()}" for status in OrderStatus.values} | set(DRIVER_EVENT_TYPES))


def is_known_pattern(pattern: str) -> bool:
    """'*', an exact event type, or '<prefix>.*' where some event type has that prefix."""
    if pattern == "*" or pattern in event_types():
        return True
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return any(event_type.startswith(prefix) for event_type in event_types())
    return False
