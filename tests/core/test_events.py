"""Domain events: numbered per organisation without gaps, of registered types only."""

import threading

import pytest
from django.db import connection, transaction

from core.actors import Actor
from core.events import (
    NewEvent,
    event_recorded,
    event_types,
    events_recorded,
    is_known_pattern,
    pattern_matches,
    record_event,
    record_events,
)
from core.models import DomainEvent
from dispatch.services.orders import create_order
from tests.conftest import order_payload
from tests.dispatch.factories import order_input

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM = Actor.system("test")


def _event(organisation, event_type="driver.online"):
    with transaction.atomic():
        return record_event(
            organisation=organisation,
            event_type=event_type,
            subject_type="test",
            subject_id="1",
            actor=SYSTEM,
            payload={},
        )


def test_each_organisation_numbers_its_events_from_one_without_gaps(org, other_org):
    for _ in range(3):
        _event(org)
    _event(other_org)
    try:
        with transaction.atomic():
            _event(org)
            raise RuntimeError("the change is rolled back with its event")
    except RuntimeError:
        pass
    _event(org)
    ours = list(
        DomainEvent.objects.filter(organisation=org).order_by("sequence").values_list("sequence", flat=True)
    )
    assert ours == [1, 2, 3, 4]
    assert list(DomainEvent.objects.filter(organisation=other_org).values_list("sequence", flat=True)) == [1]


def test_a_batch_takes_consecutive_numbers_and_is_heard_once_as_a_batch_and_per_event(org):
    _event(org)
    batches, singles = [], []

    def heard_batch(sender, events, **kwargs):
        batches.append([e.sequence for e in events])

    def heard_one(sender, event, **kwargs):
        singles.append(event.sequence)

    events_recorded.connect(heard_batch)
    event_recorded.connect(heard_one)
    try:
        with transaction.atomic():
            rows = record_events(
                organisation=org,
                actor=SYSTEM,
                events=[NewEvent("driver.online", "test", n, {"n": n}) for n in range(3)],
            )
    finally:
        events_recorded.disconnect(heard_batch)
        event_recorded.disconnect(heard_one)
    assert [row.sequence for row in rows] == [2, 3, 4]
    assert batches == [[2, 3, 4]] and singles == [2, 3, 4]
    stored = DomainEvent.objects.filter(organisation=org, sequence__gt=1).order_by("sequence")
    assert [(e.subject_id, e.payload, e.actor_label) for e in stored] == [
        (str(n), {"n": n}, "test") for n in range(3)
    ]


def test_an_order_and_its_events_carry_the_next_numbers(org):
    _event(org)
    order = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="SEQ-1")))
    event = DomainEvent.objects.get(subject_id=str(order.id))
    assert (event.event_type, event.sequence) == ("order.created", 2)


def test_concurrent_writers_get_distinct_consecutive_numbers(org):
    """Threads recording at once (PostgreSQL: row lock on the counter; SpatiaLite: the write
    lock) never share a number and leave no gap."""
    errors = []

    def record():
        try:
            for _ in range(5):
                _event(org)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    numbers = sorted(DomainEvent.objects.filter(organisation=org).values_list("sequence", flat=True))
    assert numbers == list(range(1, 21))


def test_an_unregistered_event_type_is_refused(org):
    with pytest.raises(ValueError, match="not registered"):
        _event(org, "order.teleported")
    assert not DomainEvent.objects.exists()


def test_domains_register_their_event_types_and_patterns_match_them():
    types = event_types()
    assert {"order.created", "order.released", "order.delivered", "driver.status_changed"} <= set(types)
    assert all(meaning for meaning in types.values())
    assert pattern_matches("order.*", "order.released") and not pattern_matches("order.*", "driver.online")
    assert pattern_matches("*", "driver.online") and pattern_matches("driver.online", "driver.online")
    assert is_known_pattern("order.*") and not is_known_pattern("parcel.*")


def test_insert_rows_writes_what_bulk_create_writes(org):
    """A round's events and offers go in through insert_rows (one COPY on PostgreSQL): every
    column reads back as bulk_create's would, awkward text and nested payloads too."""
    from datetime import timedelta

    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from core.db import insert_rows
    from dispatch.models import Offer
    from tests.conftest import make_active_driver

    now = timezone.now()
    payload = {
        "text": "quotes \" ' backslash \\ {braces} [1] %s, ümlaut, emoji 🚲, new\nline",
        "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
        "number": 12345678901234,
    }

    def events(start):
        return [
            DomainEvent(
                organisation_id=org.id,
                sequence=start + i,
                event_type="order.offered",
                subject_type="order",
                subject_id=f"s{i}",
                reason='why, "quoted",\ttab \\N \\ new\nline' if i else "",
                payload={**payload, "i": i},
                occurred_at=now,
                **Actor.system("insert-test").as_fields(),
            )
            for i in range(3)
        ]

    def columns(row, *skip):
        return {k: v for k, v in type(row).objects.filter(pk=row.pk).values().get().items() if k not in skip}

    with CaptureQueriesContext(connection) as queries:
        inserted = insert_rows(DomainEvent, events(10_000))
    # One statement; on PostgreSQL a COPY (elsewhere bulk_create).
    (query,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "COPY"))]
    assert query.startswith("COPY") == (connection.vendor == "postgresql")
    created = DomainEvent.objects.bulk_create(events(20_000))
    for a, b in zip(inserted, created, strict=True):
        assert not a._state.adding
        assert columns(a, "id", "sequence") == columns(b, "id", "sequence")
        assert columns(a)["payload"]["text"] == payload["text"]
    driver = make_active_driver(org)

    def offers():
        return [
            Offer(
                organisation=org,
                driver=driver,
                incentive_minor=150,
                currency="EUR",
                attempt=2,
                expires_at=now + timedelta(minutes=1),
                explanation=["3 min to the pickup", 'a "quoted" line'],
            )
            for _ in range(2)
        ]

    for a, b in zip(insert_rows(Offer, offers()), Offer.objects.bulk_create(offers()), strict=True):
        a_cols, b_cols = columns(a, "id", "created_at"), columns(b, "id", "created_at")
        assert a_cols == b_cols and a_cols["status"] == "PENDING"
        assert abs(columns(a)["created_at"] - columns(b)["created_at"]) < timedelta(seconds=5)


def test_insert_rows_leaves_a_database_made_key_to_the_database(org):
    """Rows whose key the database makes (order transitions, an offer's orders) go in through
    insert_rows too: the key is left out and numbered by the database, every other column as
    bulk_create writes it."""
    from django.utils import timezone

    from core.db import insert_rows
    from dispatch.models import OrderTransition
    from dispatch.services.orders import create_order
    from tests.conftest import order_payload
    from tests.dispatch.factories import order_input

    actor = Actor.system("insert-test")
    order = create_order(organisation=org, actor=actor, data=order_input(order_payload(ref="IR-1")))
    before = timezone.now()

    def transitions():
        return [
            OrderTransition(
                order_id=order.id,
                action="offer",
                from_status="CREATED",
                to_status="OFFERED",
                reason=f'reason {i}, "quoted"',
                **actor.as_fields(),
            )
            for i in range(3)
        ]

    inserted = insert_rows(OrderTransition, transitions())
    created = OrderTransition.objects.bulk_create(transitions())
    assert all(row.pk is not None for row in created)
    rows = list(OrderTransition.objects.filter(order=order).order_by("id").values())
    assert len(rows) == 6 and len({row["id"] for row in rows}) == 6
    for a, b in zip(rows[:3], rows[3:], strict=True):
        assert {k: v for k, v in a.items() if k not in ("id", "occurred_at")} == {
            k: v for k, v in b.items() if k not in ("id", "occurred_at")
        }
        assert a["occurred_at"] >= before
    assert [row["reason"] for row in rows[:3]] == [f'reason {i}, "quoted"' for i in range(3)]
    assert all(not row._state.adding for row in inserted)
