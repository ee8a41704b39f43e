"""Recording domain events. Services call record_event inside their transaction."""

from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent

# Sent inside the recording transaction, so receivers (webhook fan-out) write atomically
# with the change itself: an event is never recorded without its deliveries, or vice versa.
event_recorded = Signal()


def record_event(
    *,
    organisation: Any,
    event_type: str,
    subject_type: str,
    subject_id: Any,
    actor: Actor,
    payload: dict[str, Any],
    reason: str = "",
) -> DomainEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must run inside the service's transaction")
    event = DomainEvent.objects.create(
        organisation=organisation,
        event_type=event_type,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason,
        payload=payload,
        occurred_at=timezone.now(),
        **actor.as_fields(),
    )
    event_recorded.send(sender=DomainEvent, event=event)
    return event
