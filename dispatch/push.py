"""Telling a driver's app about new work over its socket (dispatch.consumers.DriverConsumer).

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


def offer_to_driver(offer) -> None:
    """Push a new offer to its driver's open sockets; a push that fails is logged, not raised
    (the app also lists its offers, so nothing is lost)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            driver_group(offer.driver_id), {"type": "offer.created", "offer_id": str(offer.id)}
        )
    except Exception:
        logger.exception("pushing offer %s to driver %s failed", offer.id, offer.driver_id)


def live_group(organisation_id) -> str:
    return f"live.{organisation_id}"


def _send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        logger.exception("pushing %s to %s failed", message.get("type"), group)


def route_changed(organisation_id, driver_id) -> None:
    """The driver's route changed (stops, order or ETAs): their app reloads it, the live map
    redraws it. Called on commit; the sockets read the route as it is then."""
    _send(driver_group(driver_id), {"type": "route.updated"})
    to_live_map(organisation_id, {"kind": "route", "driver_id": str(driver_id)})


def to_live_map(organisation_id, event: dict) -> None:
    """Tell the organisation's open live maps of a change (dispatch.consumers.LiveMapConsumer)."""
    _send(live_group(organisation_id), {"type": "live.event", "event": event})
