"""The rules are weighed as what they count arrives, in the transaction that recorded it."""

from django.dispatch import receiver

from core.events import events_recorded
from discipline import services

ANSWER_EVENTS = frozenset({"offer.accepted", "offer.declined", "offer.expired"})


@receiver(events_recorded)
def weigh_offer_answers(sender, events, **kwargs) -> None:
    """A driver answered an offer (or let it lapse): the acceptance rules are weighed for them."""
    drivers = sorted({event.payload["driver_id"] for event in events if event.event_type in ANSWER_EVENTS})
    for driver_id in drivers:
        services.evaluate_driver(driver_id=driver_id, metrics={"acceptance_rate"})
