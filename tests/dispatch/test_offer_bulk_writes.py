"""A round's offers are written in bulk (make_offers: plain locked rows, one insert per table,
`__any` id lists): the rows are the ones the one-at-a-time path writes."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from core.geo import point_as_dict
from core.models import DomainEvent
from dispatch.models import Offer, Order, OrderStatus, OrderTransition
from dispatch.services.offers import OfferDraft, make_offers
from dispatch.services.orders import (
    create_order,
    lock_offerable_orders,
    order_event_payload,
    transition_order,
)
from fleet.services import set_driver_online
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input

ROUND = Actor.system("dispatch-round")


def new_order(org, ref, lat=60.17, lon=24.94):
    payload = order_payload(ref=ref)
    payload["pickup"].update(lat=lat, lon=lon)
    return create_order(organisation=org, actor=ROUND, data=order_input(payload))


def online_driver(org, n):
    driver = make_active_driver(org, name=f"Bulk {n}", phone=f"+35840200030{n}", plate=f"BW-{n}")
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=ROUND)
    return driver


def transition_columns(order):
    return (
        OrderTransition.objects.filter(order=order)
        .values(
            "action",
            "from_status",
            "to_status",
            "driver_id",
            "reason",
            "is_override",
            "actor_type",
            "actor_label",
        )
        .get()
    )


def offered_event(order):
    event = DomainEvent.objects.get(subject_id=str(order.id), event_type="order.offered")
    payload = {**event.payload, "order_id": None, "external_ref": None}
    return (event.actor_type, event.actor_label, event.reason, event.client_id, payload)


def history(order):
    return list(
        order.history.order_by("history_date").values_list("status", "history_type", "history_change_reason")
    )


def test_offering_in_bulk_writes_what_one_transition_writes(org):
    bulk, single = new_order(org, "BW-1", lat=60.1712345), new_order(org, "BW-2", lat=60.1712345)
    driver = online_driver(org, 1)
    made = make_offers(
        organisation=org,
        drafts=[OfferDraft(driver, [bulk], ["why"], 120, 2)],
        expires_at=timezone.now() + timedelta(minutes=1),
        actor=ROUND,
    )
    transition_order(order_id=single.id, organisation=org, action="offer", actor=ROUND)
    bulk.refresh_from_db()
    single.refresh_from_db()
    assert bulk.status == single.status == OrderStatus.OFFERED
    assert transition_columns(bulk) == transition_columns(single)
    assert offered_event(bulk) == offered_event(single)
    assert offered_event(bulk)[4]["pickup"] == {"lat": 60.1712345, "lon": 24.94}
    assert history(bulk) == history(single)
    (offer,) = made
    assert list(Offer.objects.get(id=offer.id).orders.all()) == [bulk]
    assert offer.driver_id == driver.id and offer.incentive_minor == 120 and offer.attempt == 2


def test_locked_offerable_orders_read_as_the_orders_do(org):
    orders = [new_order(org, f"BW-{i}", lat=60.1 + i / 1e6) for i in range(3)]
    locked = lock_offerable_orders(organisation=org, order_ids=[o.id for o in orders], skip_locked=False)
    assert list(locked) == sorted(o.id for o in orders)
    for order in orders:
        row = Order.objects.get(id=order.id)
        assert order_event_payload(locked[order.id]) == order_event_payload(row)
        assert point_as_dict(locked[order.id].dropoff_location) == point_as_dict(row.dropoff_location)
        assert (locked[order.id].currency, locked[order.id].client_id) == (row.currency, row.client_id)


def test_an_id_list_is_one_array_on_postgresql_and_matches_in(org):
    orders = [new_order(org, f"BW-{i}") for i in range(4)]
    ids = [o.id for o in orders[:3]]
    with CaptureQueriesContext(connection) as queries:
        found = set(Order.objects.filter(id__any=ids).values_list("id", flat=True))
    assert found == set(Order.objects.filter(id__in=ids).values_list("id", flat=True)) == set(ids)
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert ("= ANY(" in sql) == (connection.vendor == "postgresql")
    # Related fields take it too, and an empty list matches nothing, as `__in` does.
    assert OrderTransition.objects.filter(order_id__any=ids).count() == 0
    assert not Order.objects.filter(id__any=[]).exists()
