"""Telling a driver's app about new work (and reposition suggestions) over its socket (dispatch.consumers.DriverConsumer).

Services call these on commit, so a driver never hears of an offer that was rolled back. The
message names the offer only; the socket loads it for its own driver after re-checking that
the device or session may still see it.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def driver_group(driver_id) -> str:
    return f"driver.{driver_id}"


def _to_driver(driver_id, message: dict) -> None:
    """Send to a driver's open sockets; a push that fails is logged, not raised (the app also
    lists its offers and suggestions, so nothing is lost)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(driver_group(driver_id), message)
    except Exception:
        logger.exception("pushing %s to driver %s failed", message, driver_id)


def offer_to_driver(offer) -> None:
    """Push a new offer to its driver."""
    _to_driver(offer.driver_id, {"type": "offer.created", "offer_id": str(offer.id)})


def suggestion_to_driver(suggestion) -> None:
    """Push a new reposition suggestion to its driver."""
    _to_driver(suggestion.driver_id, {"type": "reposition.suggested", "suggestion_id": str(suggestion.id)})
