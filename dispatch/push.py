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


def _send(group: str, message: dict) -> None:
    """Send to a group's open sockets; a push that fails is logged, not raised (the apps also
    read what changed through the API, so nothing is lost)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        logger.exception("pushing %s to %s failed", message.get("type"), group)


def _to_driver(driver_id, message: dict) -> None:
    _send(driver_group(driver_id), message)


def offer_to_driver(offer) -> None:
    """Push a new offer to its driver."""
    _to_driver(offer.driver_id, {"type": "offer.created", "offer_id": str(offer.id)})


def suggestion_to_driver(suggestion) -> None:
    """Push a new reposition suggestion to its driver."""
    _to_driver(suggestion.driver_id, {"type": "reposition.suggested", "suggestion_id": str(suggestion.id)})


def live_group(organisation_id) -> str:
    return f"live.{organisation_id}"


def route_changed(organisation_id, driver_id) -> None:
    """The driver's route changed (stops, order or ETAs): their app reloads it, the live map
    redraws it. Called on commit; the sockets read the route as it is then."""
    _to_driver(driver_id, {"type": "route.updated"})
    to_live_map(organisation_id, {"kind": "route", "driver_id": str(driver_id)})


def to_live_map(organisation_id, event: dict) -> None:
    """Tell the organisation's open live maps of a change (dispatch.consumers.LiveMapConsumer)."""
    _send(live_group(organisation_id), {"type": "live.event", "event": event})
