"""The rules are weighed as what they count arrives, in the transaction that recorded it:
a delivery's outcome (scorecards' signal), an offer answered or let lapse, a rating."""

from django.dispatch import receiver

from core.events import events_recorded
from discipline import engine, services
from scorecards.signals import delivery_outcome_excused, delivery_outcome_recorded

# Heard after scorecards stored the fact (its receiver is connected first: INSTALLED_APPS).
ANSWER_EVENTS = frozenset({"offer.accepted", "offer.declined", "offer.expired"})
RATING_EVENTS = frozenset({"rating.received"})


@receiver(delivery_outcome_recorded)
def weigh_delivery_outcome(sender, outcome, **kwargs) -> None:
    services.evaluate_driver(driver_id=outcome.driver_id, metrics=engine.OUTCOME_METRICS)


@receiver(delivery_outcome_excused)
def reconsider_excused_outcome(sender, outcome, **kwargs) -> None:
    """A dispatcher excused a lateness afterwards: decisions that counted it go to a person."""
    services.reconsider_after_excuse(outcome=outcome)


@receiver(events_recorded)
def weigh_offer_answers_and_ratings(sender, events, **kwargs) -> None:
    """Each driver whose offer answers or ratings arrived is weighed once per batch (a sweep
    of expired offers records many at once)."""
    metrics_by_driver: dict[str, set[str]] = {}
    for event in events:
        if event.event_type in ANSWER_EVENTS:
            metrics_by_driver.setdefault(event.payload["driver_id"], set()).add("acceptance_rate")
        elif event.event_type in RATING_EVENTS and event.payload.get("driver_id"):
            metrics_by_driver.setdefault(event.payload["driver_id"], set()).add("mean_rating")
    for driver_id in sorted(metrics_by_driver):
        services.evaluate_driver(driver_id=driver_id, metrics=metrics_by_driver[driver_id])
