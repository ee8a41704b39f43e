"""The scorecards hear the domain events as they are recorded (in the same transaction) and
store each fact once: deliveries, failures, a driver giving up an order, offer answers, the
geofence's departures (service times) and re-sequenced routes."""

from datetime import datetime

from django.dispatch import receiver

from core.actors import ActorType
from core.events import events_recorded
from dispatch.models import GeofenceVisit, Offer, Order
from scorecards import services
from scorecards.models import OfferAnswer

OFFER_ANSWERS = {
    "offer.accepted": OfferAnswer.Answer.ACCEPTED,
    "offer.declined": OfferAnswer.Answer.DECLINED,
    "offer.expired": OfferAnswer.Answer.EXPIRED,
}
SCORED_EVENTS = frozenset(
    {*OFFER_ANSWERS, "order.delivered", "order.failed", "order.cancelled", "order.released"}
    | {"geofence.exited", "route.resequenced"}
)


@receiver(events_recorded)
def score_the_facts(sender, events, **kwargs) -> None:
    for event in events:
        if event.event_type in SCORED_EVENTS:
            _score(event)


def _score(event) -> None:
    kind, payload = event.event_type, event.payload
    if kind in OFFER_ANSWERS:
        offer = Offer.objects.filter(id=event.subject_id).first()
        if offer is not None:
            services.record_offer_answer(
                offer=offer, answer=OFFER_ANSWERS[kind], answered_at=event.occurred_at
            )
    elif kind in ("order.delivered", "order.failed") and payload.get("driver_id"):
        order = Order.objects.get(id=event.subject_id)
        if order.driver_id is not None:
            services.record_delivery_outcome(
                order=order, finished_at=event.occurred_at, failed=kind == "order.failed"
            )
    elif kind in ("order.cancelled", "order.released") and event.actor_type == ActorType.DRIVER:
        driver_id = payload.get("previous_driver_id") or payload.get("driver_id")
        if driver_id:
            order = Order.objects.get(id=event.subject_id)
            services.record_cancellation(
                order=order,
                driver_id=driver_id,
                event_id=event.id,
                cancelled_at=event.occurred_at,
                reason=event.reason,
            )
    elif kind == "geofence.exited":
        visit = (
            GeofenceVisit.objects.filter(
                order_id=payload["order_id"], driver_id=payload["driver_id"], kind=payload["stop"]
            )
            .exclude(entered_at__isnull=True)
            .order_by("-entered_at")
            .first()
        )
        if visit is not None:
            services.record_stop_service(visit=visit, departed_at=datetime.fromisoformat(payload["at"]))
    elif kind == "route.resequenced":
        services.record_resequences(
            organisation_id=event.organisation_id,
            driver_id=payload["driver_id"],
            at=event.occurred_at,
            moved=payload.get("moved", []),
            reason=event.reason,
        )
