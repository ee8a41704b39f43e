"""Domain events: the catalogue of their types, and recording them.

Each domain registers the event types it records (in its AppConfig.ready), so consumers such
as webhooks learn them without a list of their own. Services call record_event inside their
transaction; it numbers the event in its organisation and tells the receivers of
`events_recorded` (webhook fan-out, domain reactions) in that same transaction.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from core.actors import Actor
from core.db import insert_rows
from core.geo import point_as_dict
from core.models import DomainEvent, EventCounter

# Sent inside the recording transaction, so receivers write atomically with the change
# itself: an event is never recorded without its deliveries or reactions, or vice versa.
# `events_recorded(events=[...])`: the events recorded together (one, or a batch from
# record_events), in order; receivers that work per event may hear `event_recorded(event=...)`
# instead, sent once per event (only when someone listens: a round records thousands).
events_recorded = Signal()
event_recorded = Signal()

_EVENT_TYPES: dict[str, str] = {}
# The types recorded with a client (record_event's client_id): the only ones a client's
# webhook subscription can hear.
_CLIENT_SCOPED: set[str] = set()


def register_event_types(types: dict[str, str], *, client_scoped: bool = False) -> None:
    """Declare event types (name -> what it means) that a domain records; `client_scoped` when
    they are about one client's rows (orders), so a client's subscription may hear them."""
    for name, meaning in types.items():
        if "." not in name or name.endswith(".*"):
            raise ValueError(f"Event type '{name}' must look like 'subject.verb'.")
        _EVENT_TYPES[name] = meaning
        if client_scoped:
            _CLIENT_SCOPED.add(name)


def event_types(*, client_scoped_only: bool = False) -> dict[str, str]:
    """Every registered event type with its meaning (only a client's, if asked)."""
    return {name: meaning for name, meaning in _EVENT_TYPES.items() if _heard(name, client_scoped_only)}


def _heard(event_type: str, client_scoped_only: bool) -> bool:
    return not client_scoped_only or event_type in _CLIENT_SCOPED


def pattern_matches(pattern: str, event_type: str) -> bool:
    """'*' matches all, 'order.*' every type under 'order.', anything else itself."""
    if pattern in ("*", event_type):
        return True
    return pattern.endswith(".*") and event_type.startswith(pattern[:-1])


def is_known_pattern(pattern: str, *, client_scoped_only: bool = False) -> bool:
    """A pattern that matches at least one registered event type (one a client hears, if asked:
    a client's subscription to 'driver.*' would never be sent anything)."""
    return any(
        pattern_matches(pattern, event_type)
        for event_type in event_types(client_scoped_only=client_scoped_only)
    )


def payload_value(value: Any) -> Any:
    """A field's value as an event payload holds it (JSON): places as lat/lon, times in UTC,
    decimals as strings, rows by id, many rows as a sorted list of ids."""
    if hasattr(value, "all"):  # a related manager
        value = list(value.all())
    if isinstance(value, list | tuple | set):
        return sorted(str(getattr(item, "pk", item)) for item in value)
    if isinstance(value, Point):
        return point_as_dict(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value.pk) if hasattr(value, "pk") else value


def _take_sequences(organisation_id, count: int) -> int:
    """Take the organisation's next `count` event numbers and return the first; the counter
    row stays locked until commit."""
    EventCounter.objects.bulk_create([EventCounter(organisation_id=organisation_id)], ignore_conflicts=True)
    EventCounter.objects.filter(organisation_id=organisation_id).update(
        last_sequence=F("last_sequence") + count
    )
    last = EventCounter.objects.values_list("last_sequence", flat=True).get(organisation_id=organisation_id)
    return last - count + 1


@dataclass(frozen=True)
class NewEvent:
    """One event for record_events: what record_event takes, minus the organisation and actor
    the batch shares."""

    event_type: str
    subject_type: str
    subject_id: Any
    payload: dict[str, Any]
    reason: str = ""
    client_id: Any = None


def record_event(
    *,
    organisation: Any,
    event_type: str,
    subject_type: str,
    subject_id: Any,
    actor: Actor,
    payload: dict[str, Any],
    reason: str = "",
    client_id: Any = None,
) -> DomainEvent:
    new = NewEvent(event_type, subject_type, subject_id, payload, reason, client_id)
    return record_events(organisation=organisation, actor=actor, events=[new])[0]


def record_events(*, organisation: Any, actor: Actor, events: list[NewEvent]) -> list[DomainEvent]:
    """Record several events of one organisation and actor in one go (a dispatch round's
    offers): consecutive numbers, one insert, and one `events_recorded` signal for them all."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must run inside the service's transaction")
    for new in events:
        if new.event_type not in _EVENT_TYPES:
            raise ValueError(
                f"Event type '{new.event_type}' is not registered (core.events.register_event_types)."
            )
    if not events:
        return []
    organisation_id = getattr(organisation, "pk", organisation)
    first = _take_sequences(organisation_id, len(events))
    now = timezone.now()
    fields = actor.as_fields()
    rows = insert_rows(
        DomainEvent,
        [
            DomainEvent(
                organisation_id=organisation_id,
                sequence=first + n,
                client_id=new.client_id,
                event_type=new.event_type,
                subject_type=new.subject_type,
                subject_id=str(new.subject_id),
                reason=new.reason,
                payload=new.payload,
                occurred_at=now,
                **fields,
            )
            for n, new in enumerate(events)
        ],
    )
    events_recorded.send(sender=DomainEvent, events=rows)
    if event_recorded.has_listeners(DomainEvent):
        for row in rows:
            event_recorded.send(sender=DomainEvent, event=row)
    return rows
