"""Telling a driver's app about new work over its socket (dispatch.consumers.DriverConsumer).

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


def offers_to_drivers(offers) -> None:
    """Push new offers to their drivers' open sockets, all from one event loop (a round makes
    hundreds); a push that fails is logged, not raised (the app also lists its offers, so
    nothing is lost)."""
    layer = get_channel_layer()
    if layer is None or not offers:
        return

    async def send_all():
        results = await asyncio.gather(
            *(
                layer.group_send(
                    driver_group(offer.driver_id), {"type": "offer.created", "offer_id": str(offer.id)}
                )
                for offer in offers
            ),
            return_exceptions=True,
        )
        for offer, result in zip(offers, results, strict=True):
            if isinstance(result, Exception):
                logger.error(
                    "pushing offer %s to driver %s failed", offer.id, offer.driver_id, exc_info=result
                )

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.exception("pushing %d offers failed", len(offers))
