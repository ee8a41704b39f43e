"""Settlement hears the order's events, in the transaction that recorded them: a delivery
posts the driver's earning at once; an override out of DELIVERED reverses it."""

from django.dispatch import receiver

from core.actors import Actor
from core.events import events_recorded
from dispatch.models import OrderStatus
from payouts.services.earnings import post_delivery_earning, reverse_delivery_earning


@receiver(events_recorded)
def settle_deliveries(sender, events, **kwargs) -> None:
    """Hears a batch at once, not one signal per event: a dispatch round records thousands,
    none of them a delivery."""
    for event in events:
        if event.subject_type == "order":
            _settle(event)


def _settle(event) -> None:
    payload = event.payload
    actor = Actor.system("settlement")
    reason = f"override by {event.actor_label}: {event.reason}" if payload.get("is_override") else ""
    if event.event_type == "order.delivered" and payload.get("from_status") != OrderStatus.DELIVERED:
        post_delivery_earning(order_id=event.subject_id, actor=actor, reason=reason)
    elif (
        payload.get("from_status") == OrderStatus.DELIVERED and payload.get("status") != OrderStatus.DELIVERED
    ):
        reverse_delivery_earning(order_id=event.subject_id, actor=actor, reason=reason or event.reason)
