"""The rules of the domain: an unavailable driver keeps no work, impossible orders are refused
at the door, zones are read the same by GEOS and H3, row locks give up in time."""

import threading
import time
from datetime import UTC, datetime, timedelta

import h3
import pytest
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.models import DomainEvent
from dispatch.models import Offer, Order, OrderStatus, OrderTransition
from dispatch.services.orders import create_order, transition_order, update_order_details
from fleet.models import Driver, DriverStatus
from fleet.services import change_driver_status, create_hub, create_zone, force_driver_status
from tests.api.conftest import error_of
from tests.conftest import make_active_driver, make_hub, make_zone, order_payload, post
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test-rule")


def new_order(org, ref, **overrides):
    return create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref=ref, **overrides)))


def walk(order, org, actions, driver=None):
    for action in actions:
        transition_order(
            order_id=order.id,
            organisation=org,
            action=action,
            actor=SYSTEM,
            driver=driver if action == "assign" else None,
        )
    order.refresh_from_db()
    return order


# --- an unavailable driver never gets work -------------------------------------------------


def test_a_suspended_driver_cannot_be_assigned_even_when_handed_a_stale_driver(org):
    driver = make_active_driver(org)
    order = new_order(org, "S-1")
    stale = Driver.objects.get(id=driver.id)  # read while still ACTIVE
    change_driver_status(
        driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Repeated no-shows."
    )
    with pytest.raises(ValidationError) as caught:
        transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=stale)
    assert "driver_id" in caught.value.message_dict
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED and order.driver_id is None


@pytest.mark.parametrize("how", ["suspend", "offboard", "override"])
def test_suspension_releases_what_the_driver_has_not_picked_up_and_flags_what_they_carry(org, how):
    driver = make_active_driver(org)
    assigned = walk(new_order(org, "A-1"), org, ["assign"], driver)
    at_pickup = walk(new_order(org, "A-2"), org, ["assign", "start_pickup", "arrive_pickup"], driver)
    carried = walk(new_order(org, "A-3"), org, ["assign", "start_pickup", "arrive_pickup", "pick_up"], driver)
    private_reason = "Three complaints about conduct."
    if how == "override":
        force_driver_status(
            driver_id=driver.id,
            organisation=org,
            to_status=DriverStatus.SUSPENDED,
            actor=SYSTEM,
            reason=private_reason,
        )
    else:
        change_driver_status(
            driver_id=driver.id, organisation=org, action=how, actor=SYSTEM, reason=private_reason
        )

    for released in (assigned, at_pickup):
        released.refresh_from_db()
        assert released.status == OrderStatus.CREATED and released.driver_id is None
        last = OrderTransition.objects.filter(order=released).last()
        assert last.action == "release" and "can no longer take work" in last.reason
        assert private_reason not in last.reason  # the retailer is told the fact, not the driver's record
        event = DomainEvent.objects.get(subject_id=str(released.id), event_type="order.released")
        assert event.payload["previous_driver_id"] == str(driver.id)

    carried.refresh_from_db()
    assert carried.status == OrderStatus.PICKED_UP and carried.driver_id == driver.id
    assert "decide whether they finish" in carried.attention_reason
    assert DomainEvent.objects.filter(subject_id=str(carried.id), event_type="order.needs_attention").exists()

    # The flag ends when the order does.
    walk(carried, org, ["arrive_dropoff"])
    transition_order(order_id=carried.id, organisation=org, action="fail", actor=SYSTEM, reason="Recovered.")
    carried.refresh_from_db()
    assert carried.attention_reason == "" and carried.attention_raised_at is None


def test_suspension_withdraws_the_drivers_pending_offers(org):
    driver = make_active_driver(org)
    order = walk(new_order(org, "O-1"), org, ["offer"])
    offer = Offer.objects.create(
        organisation=org, driver=driver, currency="EUR", expires_at=timezone.now() + timedelta(minutes=2)
    )
    offer.orders.add(order)
    change_driver_status(
        driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Fraud check."
    )
    offer.refresh_from_db()
    order.refresh_from_db()
    assert offer.status == Offer.Status.WITHDRAWN
    assert order.status == OrderStatus.CREATED


def test_the_attention_flag_is_listed_and_filtered_over_the_api(org, api):
    driver = make_active_driver(org)
    carried = walk(new_order(org, "F-1"), org, ["assign", "start_pickup", "arrive_pickup", "pick_up"], driver)
    new_order(org, "F-2")
    change_driver_status(
        driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Checks."
    )
    listed = api.get("/api/v1/orders", {"needs_attention": "true"}).json()["results"]
    assert [o["external_ref"] for o in listed] == ["F-1"]
    assert listed[0]["attention"]["reason"].startswith("The driver carrying this order")
    others = api.get("/api/v1/orders", {"needs_attention": "false"}).json()["results"]
    assert {o["external_ref"] for o in others} == {"F-2"}
    assert others[0]["attention"] is None
    assert carried.id


def race_assign_and_suspend(org, driver, order) -> None:
    barrier = threading.Barrier(2)

    def run(write, *allowed):
        try:
            barrier.wait()
            write()
        except allowed:
            pass
        finally:
            connection.close()

    def assign():
        transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=driver)

    def suspend():
        change_driver_status(
            driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Race."
        )

    threads = [
        threading.Thread(target=run, args=(assign, ValidationError, OperationalError)),
        threading.Thread(target=run, args=(suspend, OperationalError)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.django_db(transaction=True)
def test_assign_and_suspend_racing_never_leave_work_with_a_suspended_driver(org):
    """PostgreSQL: row locks order the two; SpatiaLite: one writer at a time. Either way the
    order ends with no driver or an ACTIVE one."""
    for attempt in range(5):
        driver = make_active_driver(
            org, name=f"Racer {attempt}", phone=f"+35840200000{attempt}", plate=f"RCE-{attempt}"
        )
        order = new_order(org, f"RACE-{attempt}")
        race_assign_and_suspend(org, driver, order)
        order.refresh_from_db()
        driver.refresh_from_db()
        assert driver.status == DriverStatus.SUSPENDED, f"attempt {attempt}: the suspension was lost"
        assert order.driver_id is None, f"attempt {attempt}: work left with a suspended driver"


# --- impossible orders are refused at the door ---------------------------------------------


def test_an_order_whose_dropoff_window_has_closed_is_refused(org, api):
    past = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
    body = order_payload(ref="OLD-1")
    body["pickup"]["window"] = {"start": past.isoformat(), "end": (past + timedelta(hours=1)).isoformat()}
    body["dropoff"]["window"] = {"start": past.isoformat(), "end": (past + timedelta(hours=2)).isoformat()}
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 400
    assert "dropoff.window.end" in error_of(response)["fields"]  # the body's path, not the column
    assert not Order.objects.filter(external_ref="OLD-1").exists()


def test_places_outside_every_zone_are_refused_when_the_organisation_has_zones(org, api):
    far = {"address": "Tampere", "lat": 61.4978, "lon": 23.7610}  # ~170 km from the Helsinki zone
    body = order_payload(ref="FAR-1")
    body["dropoff"].update(far)
    assert post(api, "/api/v1/orders", body).status_code == 201  # no zones yet: no service area to check

    make_zone(org)
    response = post(api, "/api/v1/orders", order_payload(ref="FAR-2", dropoff={**body["dropoff"]}))
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"dropoff"}
    far_pickup = order_payload(ref="FAR-3")
    far_pickup["pickup"].update(far)
    assert set(error_of(post(api, "/api/v1/orders", far_pickup))["fields"]) == {"pickup"}
    assert post(api, "/api/v1/orders", order_payload(ref="NEAR-1")).status_code == 201


def test_a_pickup_at_the_orders_hub_is_served_wherever_the_hub_is(org, api):
    make_zone(org)
    airport = {"lat": 60.3172, "lon": 24.9633}  # outside the zone
    hub = create_hub(
        organisation=org,
        name="Airport hub",
        address="Lentoasemantie 1",
        location=Point(airport["lon"], airport["lat"], srid=4326),
    )
    body = order_payload(ref="HUB-1", hub_id=str(hub.id))
    body["pickup"].update({"lat": airport["lat"] + 0.0005, "lon": airport["lon"]})  # ~55 m away
    assert post(api, "/api/v1/orders", body).status_code == 201


def test_naming_a_hub_does_not_waive_the_zones_for_a_pickup_elsewhere(org, api):
    make_zone(org)
    hub = make_hub(org)
    body = order_payload(ref="HUB-2", hub_id=str(hub.id))
    body["pickup"].update({"lat": 0.0, "lon": 0.0})
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"pickup"}


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_integers_too_large_for_a_float_are_refused_not_a_500(org, api, value):
    body = order_payload(ref="HUGE-1")
    body["pickup"]["lat"] = value
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 400 and "pickup.lat" in error_of(response)["fields"]
    hub = post(api, "/api/v1/hubs", {"name": "H", "address": "a", "location": {"lat": 60.1, "lon": value}})
    assert hub.status_code == 400 and "location.lon" in error_of(hub)["fields"]
    area = {"type": "Polygon", "coordinates": [[[24.9, 60.1], [value, 60.1], [24.95, 60.2], [24.9, 60.1]]]}
    zone = post(api, "/api/v1/zones", {"name": "Z", "area": area})
    assert zone.status_code == 400 and "area" in error_of(zone)["fields"]


@pytest.mark.parametrize("value", [True, False, "60.1", None, [60.1], {"v": 1}])
def test_booleans_strings_and_others_are_not_coordinates(api, value):
    body = order_payload(ref="BOOL-1")
    body["pickup"]["lat"] = value
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 400
    assert "pickup.lat" in error_of(response)["fields"]


@pytest.mark.parametrize("value", [True, "24.9"])
def test_pings_and_hub_locations_refuse_booleans_too(org, api, value):
    response = post(
        api, "/api/v1/hubs", {"name": "H", "address": "a", "location": {"lat": 60.1, "lon": value}}
    )
    assert response.status_code == 400
    assert "location.lon" in error_of(response)["fields"]


# --- zones: GEOS and H3 read them the same, or they are refused ----------------------------


def square(west, south, east, north):
    polygon = Polygon.from_bbox((west, south, east, north))
    polygon.srid = 4326
    return polygon


@pytest.mark.parametrize(
    "area",
    [
        Polygon(((170, -20), (-170, -20), (-170, -15), (170, -15), (170, -20)), srid=4326),
        square(-180, -90, 180, 90),
        square(-100, 10, 100, 20),
    ],
    ids=["across-the-antimeridian", "the-world", "half-the-world"],
)
def test_zones_geos_and_h3_would_read_differently_are_refused(org, area):
    with pytest.raises(ValidationError) as caught:
        create_zone(organisation=org, name="Too wide", area=area, h3_resolution=0)
    assert "antimeridian" in caught.value.message_dict["area"][0]


def test_a_zone_split_at_the_antimeridian_has_cells_inside_its_area(org):
    area = MultiPolygon(square(179.9, -16.9, 180, -16.7), square(-180, -16.9, -179.9, -16.7), srid=4326)
    zone = create_zone(organisation=org, name="Taveuni", area=area, h3_resolution=7)
    assert zone.h3_cells
    for cell in zone.h3_cells:
        lat, lon = h3.cell_to_latlng(cell)
        assert zone.area.intersects(Point(lon, lat, srid=4326)), cell


# --- row locks give up in time -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    settings.DATABASE_IS_SPATIALITE, reason="SQLite has no row locks; its busy timeout applies"
)
def test_a_row_lock_held_elsewhere_is_given_up_after_the_lock_timeout_and_answered_503(org, api, settings):
    settings.DB_LOCK_TIMEOUT_MS = 300
    order = new_order(org, "LOCK-1")
    held, done = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            list(Order.objects.select_for_update().filter(id=order.id))
            held.set()
            done.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    held.wait(5)
    try:
        started = time.monotonic()
        response = post(api, f"/api/v1/orders/{order.id}/cancel", {"reason": "Customer called."})
        waited = time.monotonic() - started
    finally:
        done.set()
        holder.join()
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert waited < 3
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


@pytest.mark.django_db(transaction=True)
def test_lock_sets_the_timeout_for_its_transaction_only(org, settings):
    settings.DB_LOCK_TIMEOUT_MS = 1234
    with transaction.atomic():
        list(lock(Order.objects))
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                assert cursor.fetchone()[0] == "1234ms"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "0"


def test_an_edit_cannot_move_an_order_out_of_the_zones_or_into_the_past(org):
    make_zone(org)
    order = new_order(org, "EDIT-1")
    with pytest.raises(ValidationError) as caught:
        update_order_details(
            order_id=order.id,
            organisation=org,
            changes={"dropoff_location": Point(23.761, 61.4978, srid=4326)},
            actor=SYSTEM,
            reason="Customer moved.",
        )
    assert "dropoff_location" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        update_order_details(
            order_id=order.id,
            organisation=org,
            changes={
                "dropoff_window_start": datetime(2020, 1, 1, 12, tzinfo=UTC),
                "dropoff_window_end": datetime(2020, 1, 1, 13, tzinfo=UTC),
            },
            actor=SYSTEM,
            reason="Typo.",
        )
    assert "dropoff_window_end" in caught.value.message_dict
    order.refresh_from_db()
    assert order.dropoff_window_end.year == 2030


def test_a_zone_that_covers_no_h3_cell_is_refused(org):
    with pytest.raises(ValidationError) as caught:
        create_zone(
            organisation=org, name="Speck", area=square(24.9400, 60.1700, 24.9401, 60.1701), h3_resolution=7
        )
    assert "no H3 cell" in caught.value.message_dict["area"][0]


def test_the_admin_and_the_api_share_the_recipient_phone_rule(org):
    order = new_order(org, "PHONE-1")
    with pytest.raises(ValidationError) as caught:
        update_order_details(
            order_id=order.id,
            organisation=org,
            changes={"recipient_phone": "123"},
            actor=SYSTEM,
            reason="Typo.",
        )
    assert "recipient_phone" in caught.value.message_dict
