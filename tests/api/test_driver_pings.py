"""GPS pings over the driver API and the geofences they drive: arrival at the pickup and the
drop-off set from pings (dwell, accuracy), departure recorded, bad pings refused whole."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent
from dispatch.engine.geo import haversine_m
from dispatch.models import GeofenceVisit, Order, OrderStatus, OrderTransition
from fleet.models import LocationPing
from fleet.services import change_driver_status
from tests.api.conftest import error_of, offer_to
from tests.api.test_driver_api import courier, new_order
from tests.conftest import order_payload, post

PICKUP = (60.1690, 24.9410)  # order_payload's
DROPOFF = (60.1655, 24.9380)
METRES_PER_DEG_LAT = haversine_m(60.0, 24.94, 61.0, 24.94)


def near(place, metres_north=0.0):
    return place[0] + metres_north / METRES_PER_DEG_LAT, place[1]


def ping(place, at, accuracy=5.0, **extra):
    lat, lon = place
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy, "recorded_at": at.isoformat(), **extra}


@pytest.fixture
def working(org):
    """A driver online with an accepted order, and their phone."""
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    order = new_order(org, "GEO-1")
    post(app, f"/api/v1/driver/offers/{offer_to(driver, order).id}/accept", {})
    return driver, app, order


def send(app, *pings):
    body = pings[0] if len(pings) == 1 else {"pings": list(pings)}
    return post(app, "/api/v1/driver/pings", body)


def test_one_ping_or_a_batch_is_stored_and_moves_the_driver(working):
    driver, app, _order = working
    now = timezone.now()
    one = send(app, ping(near(PICKUP, 2000), now - timedelta(seconds=20), speed_mps=4.5, heading_deg=90))
    assert one.status_code == 200, one.content
    assert one.json() == {"stored": 1, "geofence": []}
    batch = send(
        app, *(ping(near(PICKUP, 1500 - 100 * i), now - timedelta(seconds=10 - i)) for i in range(5))
    )
    assert batch.json()["stored"] == 5
    driver.refresh_from_db()
    assert LocationPing.objects.filter(driver=driver).count() == 6
    assert driver.last_seen_at == now - timedelta(seconds=6)
    assert round(driver.last_location.y, 4) == round(near(PICKUP, 1100)[0], 4)


def test_arrival_at_pickup_and_dropoff_comes_from_the_pings(working):
    driver, app, order = working
    start = timezone.now() - timedelta(minutes=10)
    # Heading for the pickup: far, then at the door for a dwell.
    answer = send(
        app,
        ping(near(PICKUP, 800), start),
        ping(near(PICKUP, 200), start + timedelta(seconds=30)),
        ping(near(PICKUP, 10), start + timedelta(seconds=60)),
    )
    assert answer.json()["geofence"] == []
    order.refresh_from_db()
    assert order.status == OrderStatus.ASSIGNED  # one ping at the door is not an arrival
    answer = send(app, ping(near(PICKUP, 5), start + timedelta(seconds=75)))
    assert answer.json()["geofence"] == [
        {
            "order_id": str(order.id),
            "stop": "pickup",
            "event": "arrived",
            "at": (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
        }
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_PICKUP
    steps = OrderTransition.objects.filter(order=order).order_by("occurred_at", "id")
    arrival = steps.get(action="arrive_pickup")
    assert (arrival.actor_type, arrival.actor_label, arrival.driver_id) == ("system", "geofence", driver.id)
    assert "Arrived at the pickup by GPS: 2 pings within 50 m" in arrival.reason
    assert steps.get(action="start_pickup").actor_label == "geofence"
    # The driver presses pick-up, rides off (the pickup's departure) and reaches the drop-off.
    assert post(app, f"/api/v1/driver/orders/{order.id}/pick_up", {}).status_code == 200
    t = start + timedelta(seconds=120)
    answer = send(
        app,
        ping(near(PICKUP, 150), t),
        ping(near(PICKUP, 400), t + timedelta(seconds=20)),
        ping(near(DROPOFF, 3), t + timedelta(seconds=60)),
        ping(near(DROPOFF, -4), t + timedelta(seconds=72)),
    ).json()
    assert [(c["stop"], c["event"]) for c in answer["geofence"]] == [
        ("pickup", "left"),
        ("dropoff", "arrived"),
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_DROPOFF
    visits = {v.kind: v for v in GeofenceVisit.objects.filter(order=order)}
    pickup = visits["pickup"]
    assert (pickup.phase, pickup.exited_at) == ("LEFT", t)
    assert [e["reading"] for e in pickup.evidence["entry"]] == ["inside", "inside"]
    assert [e["reading"] for e in pickup.evidence["exit"]] == ["outside", "outside"]
    assert (visits["dropoff"].phase, visits["dropoff"].radius_m, visits["dropoff"].exit_radius_m) == (
        "INSIDE",
        50,
        75,
    )
    kinds = list(
        DomainEvent.objects.filter(event_type__startswith="geofence.")
        .order_by("sequence")
        .values_list("event_type", "payload__stop")
    )
    assert kinds == [
        ("geofence.entered", "pickup"),
        ("geofence.exited", "pickup"),
        ("geofence.entered", "dropoff"),
    ]


def test_vague_fixes_do_not_arrive_and_a_per_order_radius_is_used(working, org):
    _driver, app, order = working
    t = timezone.now() - timedelta(minutes=5)
    # 30 m off with 40 m accuracy: the circle does not fit in 50 m; no accuracy: no evidence.
    send(
        app,
        ping(near(PICKUP, 30), t, accuracy=40),
        ping(near(PICKUP, 30), t + timedelta(seconds=20), accuracy=None),
    )
    send(app, ping(near(PICKUP, 30), t + timedelta(seconds=40), accuracy=40))
    order.refresh_from_db()
    assert order.status == OrderStatus.ASSIGNED and not GeofenceVisit.objects.exists()
    # A wider fence for this pickup (a large yard): the same fixes now fit.
    Order.objects.filter(id=order.id).update(pickup_geofence_m=150)
    send(
        app,
        ping(near(PICKUP, 30), t + timedelta(seconds=60), accuracy=40),
        ping(near(PICKUP, 30), t + timedelta(seconds=80), accuracy=40),
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_PICKUP
    assert GeofenceVisit.objects.get(order=order).radius_m == 150


def test_a_driver_who_presses_arrive_first_is_not_moved_twice(working):
    _driver, app, order = working
    post(app, f"/api/v1/driver/orders/{order.id}/start_pickup", {})
    post(app, f"/api/v1/driver/orders/{order.id}/arrive_pickup", {})
    t = timezone.now() - timedelta(minutes=1)
    answer = send(app, ping(near(PICKUP), t), ping(near(PICKUP), t + timedelta(seconds=15)))
    assert answer.json()["geofence"][0]["event"] == "arrived"  # recorded as a visit all the same
    actions = list(OrderTransition.objects.filter(order=order).values_list("action", "actor_label"))
    assert actions.count(("arrive_pickup", "courier")) == 1
    assert not [a for a in actions if a[1] == "geofence"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91.0}, "pings.1.lat"),
        ({"lon": -181}, "pings.1.lon"),
        ({"lat": "60.1"}, "pings.1.lat"),
        ({"recorded_at": "2030-01-01T00:00:00Z"}, "pings.1.recorded_at"),  # far in the future
        ({"recorded_at": "2020-01-01T00:00:00Z"}, "pings.1.recorded_at"),  # too old
        ({"recorded_at": "2026-01-01T00:00:00"}, "pings.1.recorded_at"),  # no UTC offset
        ({"accuracy_m": -1}, "pings.1.accuracy_m"),
        ({"heading_deg": 360}, "pings.1.heading_deg"),
        ({"speed_mps": -2}, "pings.1.speed_mps"),
        ({"altitude": 3}, "pings.1.altitude"),
    ],
)
def test_a_batch_with_one_bad_ping_is_refused_whole_naming_it(working, body, field):
    driver, app, _order = working
    now = timezone.now()
    good = ping(near(PICKUP, 500), now - timedelta(seconds=5))
    refused = send(app, good, {**ping(near(PICKUP, 400), now), **body})
    assert refused.status_code == 400
    assert field in error_of(refused)["fields"], error_of(refused)
    assert not LocationPing.objects.filter(driver=driver).exists()


def test_a_single_bad_ping_names_its_field_and_a_batch_is_capped(working):
    driver, app, _order = working
    now = timezone.now()
    refused = send(app, ping(near(PICKUP), now + timedelta(minutes=5)))
    assert refused.status_code == 400 and "future" in error_of(refused)["fields"]["recorded_at"][0]
    too_many = send(app, *(ping(near(PICKUP, i), now - timedelta(seconds=i)) for i in range(101)))
    assert too_many.status_code == 400 and "pings" in error_of(too_many)["fields"]
    assert (
        send(app, *(ping(near(PICKUP, i), now - timedelta(seconds=i)) for i in range(100))).status_code == 200
    )
    empty = post(app, "/api/v1/driver/pings", {"pings": []})
    assert empty.status_code == 400 and "pings" in error_of(empty)["fields"]
    assert LocationPing.objects.filter(driver=driver).count() == 100


def test_an_offline_or_suspended_driver_is_told_why(working, org):
    driver, app, _order = working
    post(app, "/api/v1/driver/offline", {})
    refused = send(app, ping(near(PICKUP), timezone.now()))
    assert refused.status_code == 400
    assert "go online" in error_of(refused)["fields"]["is_online"][0]
    post(app, "/api/v1/driver/online", {})
    change_driver_status(
        driver_id=driver.id,
        organisation=org,
        action="suspend",
        actor=Actor.system("test"),
        reason="Three late deliveries this week.",
    )
    refused = send(app, ping(near(PICKUP), timezone.now()))
    assert refused.status_code == 400
    assert error_of(refused)["fields"]["status"] == [
        "Your account is suspended: Three late deliveries this week. Pings are not taken."
    ]
    assert not LocationPing.objects.filter(driver=driver).exists()


def test_a_retried_ping_request_is_applied_once(working):
    driver, app, _order = working
    body = ping(near(PICKUP, 300), timezone.now())
    first = post(app, "/api/v1/driver/pings", body, key="ping-retry-1")
    again = post(app, "/api/v1/driver/pings", body, key="ping-retry-1")
    assert first.json() == again.json() and LocationPing.objects.filter(driver=driver).count() == 1


def test_an_order_names_its_stops_geofence_radius_at_creation(api):
    body = order_payload(ref="FENCE-1")
    body["pickup"]["geofence_m"] = 120
    created = post(api, "/api/v1/orders", body)
    assert created.status_code == 201, created.content
    shown = created.json()
    assert (shown["pickup"]["geofence_m"], shown["dropoff"]["geofence_m"]) == (120, 50)
    assert Order.objects.get(external_ref="FENCE-1").pickup_geofence_m == 120
    for bad in (5, 5000, 50.5, "60"):
        body = order_payload(ref=f"FENCE-BAD-{bad}")
        body["dropoff"]["geofence_m"] = bad
        refused = post(api, "/api/v1/orders", body)
        assert refused.status_code == 400 and "dropoff.geofence_m" in error_of(refused)["fields"], bad
