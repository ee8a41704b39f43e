"""Telling a driver's app about new work (and reposition suggestions) over its socket (dispatch.consumers.DriverConsumer).

Services call these on commit, so a driver never hears of an offer that was rolled back. The
message names the offer only; the socket loads it for its own driver after re-checking that
the device or session may still see it.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def driver_group(driver_id) -> str:
    return f"driver.{driver_id}"


def _to_drivers(messages: list[tuple]) -> None:
    """Send (driver id, message) pairs to the drivers' open sockets, all from one event loop
    (a round makes hundreds); a push that fails is logged, not raised (the app also lists its
    offers and suggestions, so nothing is lost)."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        results = await asyncio.gather(
            *(layer.group_send(driver_group(driver_id), message) for driver_id, message in messages),
            return_exceptions=True,
        )
        for (driver_id, message), result in zip(messages, results, strict=True):
            if isinstance(result, Exception):
                logger.error("pushing %s to driver %s failed", message, driver_id, exc_info=result)

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.exception("pushing %d messages to drivers failed", len(messages))


def offers_to_drivers(offers) -> None:
    """Push new offers to their drivers."""
    _to_drivers([(o.driver_id, {"type": "offer.created", "offer_id": str(o.id)}) for o in offers])


def suggestion_to_driver(suggestion) -> None:
    """Push a new reposition suggestion to its driver."""
    _to_drivers(
        [(suggestion.driver_id, {"type": "reposition.suggested", "suggestion_id": str(suggestion.id)})]
    )
