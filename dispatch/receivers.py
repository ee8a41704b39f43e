"""Dispatch's reactions to other domains' events, in the same transaction as the event."""

from functools import partial

from django.db import transaction
from django.dispatch import receiver

from core.events import event_recorded
from dispatch.services.offers import withdraw_offers_of_unavailable_driver
from dispatch.services.orders import take_work_from_unavailable_driver
from dispatch.services.repositioning import end_pending_suggestions
from dispatch.services.rounds import request_round
from fleet.models import DriverStatus
from identity.models import Organisation


@receiver(event_recorded)
def driver_no_longer_active(sender, event, **kwargs) -> None:
    """A driver who stops being ACTIVE (suspended, offboarded, denied) keeps no work."""
    if event.event_type != "driver.status_changed" or event.payload.get("status") == DriverStatus.ACTIVE:
        return
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


@receiver(event_recorded)
def suggestions_that_no_longer_apply(sender, event, **kwargs) -> None:
    """A reposition suggestion lapses when its driver goes offline, takes work, or stops being
    ACTIVE: the advice was for an idle driver."""
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


@receiver(event_recorded)
def ask_for_a_round(sender, event, **kwargs) -> None:
    """Once the change commits, ask for a round for its organisation (debounced there)."""
    if event.event_type in ROUND_TRIGGERS:
        transaction.on_commit(partial(request_round, event.organisation_id))
