"""Telling drivers' apps and dispatchers' live maps what changed, over their sockets
(dispatch.consumers.DriverConsumer, LiveMapConsumer).

Services call these on commit, so nobody hears of a change that was rolled back. A message
names what changed only; the socket loads it for its own user after re-checking that the
device or session may still see it.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def driver_group(driver_id) -> str:
    return f"driver.{driver_id}"


def live_group(organisation_id) -> str:
    return f"live.{organisation_id}"


def _send_all(messages: list[tuple[str, dict]]) -> None:
    """Send (group, message) pairs, all from one event loop (a round makes hundreds); a push
    that fails is logged, not raised (the apps also read what changed through the API, so
    nothing is lost)."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        results = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in messages),
            return_exceptions=True,
        )
        for (group, message), result in zip(messages, results, strict=True):
            if isinstance(result, Exception):
                logger.error("pushing %s to %s failed", message.get("type"), group, exc_info=result)

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.exception("pushing %d messages failed", len(messages))


def offers_to_drivers(offers) -> None:
    """Push new offers to their drivers."""
    _send_all([(driver_group(o.driver_id), {"type": "offer.created", "offer_id": str(o.id)}) for o in offers])


def suggestion_to_driver(suggestion) -> None:
    """Push a new reposition suggestion to its driver."""
    message = {"type": "reposition.suggested", "suggestion_id": str(suggestion.id)}
    _send_all([(driver_group(suggestion.driver_id), message)])


# kind -> loader(object_id, driver_id) -> the object as the driver API shows it, or None when it
# is not theirs. Apps above dispatch register theirs (AppConfig.ready), so the driver's socket
# can send their objects without dispatch importing them.
DRIVER_OBJECT_LOADERS: dict = {}


def register_driver_object(kind: str, loader) -> None:
    DRIVER_OBJECT_LOADERS[kind] = loader


def object_to_driver(driver_id, kind: str, object_id) -> None:
    """Tell a driver's app that one of their objects of a registered kind (a decision about
    them...) is new or changed: the socket loads it for them and sends `{"type": kind, kind: {...}}`."""
    if kind not in DRIVER_OBJECT_LOADERS:
        raise ValueError(f"No loader is registered for '{kind}' (dispatch.push.register_driver_object).")
    message = {"type": "driver.object", "kind": kind, "object_id": str(object_id)}
    _send_all([(driver_group(driver_id), message)])


def route_changed(organisation_id, driver_id) -> None:
    """The driver's route changed (stops, order or ETAs): their app reloads it, the live map
    redraws it. Called on commit; the sockets read the route as it is then."""
    _send_all(
        [
            (driver_group(driver_id), {"type": "route.updated"}),
            (live_group(organisation_id), _live_event({"kind": "route", "driver_id": str(driver_id)})),
        ]
    )


def to_live_map(organisation_id, events: list[dict]) -> None:
    """Tell the organisation's open live maps of changes (a round's hundreds: one send)."""
    _send_all([(live_group(organisation_id), _live_event(event)) for event in events])


def _live_event(event: dict) -> dict:
    return {"type": "live.event", "event": event}
