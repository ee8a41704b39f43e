"""Dispatch's reactions to other domains' events, in the same transaction as the event."""

from functools import partial

from django.db import transaction
from django.dispatch import receiver

from core.events import events_recorded
from dispatch import push
from dispatch.services.offers import withdraw_offers_of_unavailable_driver
from dispatch.services.orders import take_work_from_unavailable_driver
from dispatch.services.repositioning import end_pending_suggestions
from dispatch.services.rounds import request_round
from fleet.models import DriverStatus
from identity.models import Organisation


@receiver(events_recorded)
def driver_no_longer_active(sender, events, **kwargs) -> None:
    """A driver who stops being ACTIVE (suspended, offboarded, denied) keeps no work."""
    for event in events:
        if event.event_type == "driver.status_changed" and event.payload.get("status") != DriverStatus.ACTIVE:
            _take_work_away(event)


def _take_work_away(event) -> None:
    status = event.payload["status"]
    withdraw_offers_of_unavailable_driver(
        driver_id=event.subject_id,
        organisation=Organisation.objects.get(id=event.organisation_id),
        status_word=DriverStatus(status).label.lower(),
    )
    take_work_from_unavailable_driver(
        driver_id=event.subject_id,
        organisation_id=event.organisation_id,
        driver_status=status,
    )


@receiver(events_recorded)
def suggestions_that_no_longer_apply(sender, events, **kwargs) -> None:
    """A reposition suggestion lapses when its driver goes offline, takes work, or stops being
    ACTIVE: the advice was for an idle driver."""
    for event in events:
        _end_suggestions_after(event)


def _end_suggestions_after(event) -> None:
    if event.event_type == "driver.offline":
        driver_id, reason = event.subject_id, "You went offline."
    elif event.event_type == "offer.accepted":
        driver_id, reason = event.payload["driver_id"], "You took work; the suggestion no longer applies."
    elif event.event_type == "driver.status_changed" and event.payload.get("status") != DriverStatus.ACTIVE:
        driver_id, reason = event.subject_id, "You can no longer take work."
    else:
        return
    end_pending_suggestions(driver_id=driver_id, reason=reason)


# Events after which a round may find new work or a new driver for it.
ROUND_TRIGGERS = frozenset(
    {
        "order.created",
        "order.released",
        "driver.online",
        "offer.declined",
        "offer.expired",
        "dispatch.settings_updated",
    }
)


@receiver(events_recorded)
def ask_for_a_round(sender, events, **kwargs) -> None:
    """Once the change commits, ask for a round for its organisation (debounced there)."""
    if any(event.event_type in ROUND_TRIGGERS for event in events):
        transaction.on_commit(partial(request_round, events[0].organisation_id))


# Events the live map redraws for, besides routes (pushed by the routes service itself).
LIVE_MAP_EVENTS = frozenset(
    {
        "offer.created",
        "offer.accepted",
        "offer.declined",
        "offer.expired",
        "offer.withdrawn",
        "order.at_risk",
        "order.at_risk_cleared",
    }
)


@receiver(events_recorded)
def tell_the_live_map(sender, events, **kwargs) -> None:
    """Once the change commits, the organisation's open live maps hear of it: the changes of
    one batch of events (a round's offers) in one push."""
    changes = []
    for event in events:
        if event.event_type not in LIVE_MAP_EVENTS:
            continue
        if event.subject_type == "offer":
            changes.append({"kind": "offer", "offer_id": event.subject_id})
        else:
            changes.append(
                {
                    "kind": "at_risk",
                    "order_id": event.subject_id,
                    "at_risk": event.event_type == "order.at_risk",
                }
            )
    if changes:
        transaction.on_commit(partial(push.to_live_map, events[0].organisation_id, changes))


@receiver(events_recorded)
def resequence_on_traffic(sender, events, **kwargs) -> None:
    """Travel times changed (a `traffic.*` event): once it commits, re-sequence the
    organisation's routes (a task; in-process it runs at once)."""
    if any(event.event_type.startswith("traffic.") for event in events):
        transaction.on_commit(partial(_queue_resequencing, str(events[0].organisation_id)))


def _queue_resequencing(organisation_id: str) -> None:
    from dispatch.tasks import resequence_routes

    resequence_routes.delay(organisation_id)
