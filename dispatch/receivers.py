"""Dispatch's reactions to other domains' events, in the same transaction as the event."""

from django.dispatch import receiver

from core.events import event_recorded
from dispatch.services.offers import withdraw_offers_of_unavailable_driver
from dispatch.services.orders import take_work_from_unavailable_driver
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
