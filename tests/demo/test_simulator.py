"""The demo simulator: orders placed through the API, assigned, driven and delivered."""

import random
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from demo import city
from demo.seed import seed_demo_city
from demo.simulator import (
    DROPOFF_MAX_M,
    DROPOFF_MIN_M,
    ApiOrderPlacer,
    Courier,
    OrderRejected,
    Simulator,
    signature_png,
    wait_until_healthy,
)
from dispatch.engine.geo import haversine_m
from dispatch.models import DRIVER_HOLDS_STATUSES, Offer, OfferStatus, Order, OrderStatus, OrderTransition
from fleet.models import LocationPing
from identity.models import ApiKey

LIFECYCLE = ["offer", "assign", "start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff", "deliver"]


@pytest.fixture(scope="module")
def graph():
    return city.city_graph()


@pytest.fixture
def small_city(db, graph):
    return seed_demo_city(graph=graph, driver_count=6)


def drf_placer(plaintext):
    """Posts through the real API view stack in-process (DRF's test client)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    def place(payload, idempotency_key):
        response = client.post("/api/v1/orders", payload, format="json", HTTP_IDEMPOTENCY_KEY=idempotency_key)
        if response.status_code != 201:
            raise OrderRejected(response.status_code, response.content.decode())
        return response.json()

    return place


def make_simulator(seeded, graph, **options):
    defaults = {
        "orders_per_minute": 60.0,
        "max_backlog": 4,
        "speed_multiplier": 40.0,
        "tick_seconds": 2.0,
        "service_bbox": city.BBOX,
    }
    return Simulator(
        organisation=seeded.organisation,
        graph=graph,
        place_order=drf_placer(seeded.api_key_plaintext),
        rng=random.Random(11),
        **(defaults | options),
    )


def test_ticks_place_assign_drive_and_deliver(small_city, graph):
    org = small_city.organisation
    simulator = make_simulator(small_city, graph)
    start = timezone.now()
    totals = {"placed": 0, "assigned": 0, "delivered": 0, "rejected": 0}
    for i in range(60):
        report = simulator.tick(start + timedelta(seconds=2 * (i + 1)))
        for key in totals:
            totals[key] += getattr(report, key)
        if totals["delivered"] >= 2:
            break
    assert totals["delivered"] >= 2, totals
    assert totals["rejected"] == 0, "the simulator placed an order the API refuses (outside the zones?)"

    orders = Order.objects.filter(organisation=org)
    assert orders.count() == totals["placed"] > 0
    # Orders came in through the API with the demo key, not from the database directly.
    key = ApiKey.objects.get(organisation=org, name="demo-simulator")
    assert key.last_used_at is not None
    from core.models import DomainEvent

    created = DomainEvent.objects.filter(organisation=org, event_type="order.created")
    assert created.count() == totals["placed"]
    assert set(created.values_list("actor_api_key", flat=True)) == {key.id}

    delivered = orders.filter(status=OrderStatus.DELIVERED)
    assert delivered.count() == totals["delivered"]
    for order in delivered:
        steps = list(OrderTransition.objects.filter(order=order).values_list("action", flat=True))
        # Offered by the dispatch round (again after a courier declined), accepted, then driven.
        assert steps[-len(LIFECYCLE) :] == LIFECYCLE, steps
        assert steps[: -len(LIFECYCLE)] == ["offer", "release"] * (len(steps) // 2 - 3), steps
        actors = dict(OrderTransition.objects.filter(order=order).values_list("action", "actor_label"))
        assert actors["offer"] == "dispatch-round" and actors["assign"] == "demo-courier"
        assert {actors[step] for step in LIFECYCLE[2:]} == {"demo-simulator"}
        accepted = Offer.objects.get(orders=order, status=OfferStatus.ACCEPTED)
        assert accepted.driver_id == order.driver_id and accepted.explanation
        proof = order.proof_of_delivery
        assert proof.driver_id == order.driver_id
        assert (
            haversine_m(
                proof.location.y, proof.location.x, order.dropoff_location.y, order.dropoff_location.x
            )
            <= 50
        )
        with proof.signature.open("rb") as handle:
            assert Image.open(handle).format == "PNG"
        # The courier really drove there: pings along the way, the last one at the door.
        pings = LocationPing.objects.filter(driver=order.driver).order_by("recorded_at")
        assert pings.count() > 3
    assert totals["assigned"] >= totals["delivered"]
    # Every order a driver took fits their vehicle.
    for order in orders.exclude(driver=None).select_related("driver"):
        vehicle = order.driver.vehicles.get(is_active=True)
        assert order.weight_kg <= vehicle.capacity_kg
    # Nobody holds two orders at once: the demo's rules do not batch, and a courier with work
    # is busy for the round.
    holders = list(orders.filter(status__in=DRIVER_HOLDS_STATUSES).values_list("driver_id", flat=True))
    assert len(holders) == len(set(holders))


def test_backlog_cap_stops_new_orders(small_city, graph):
    from fleet.models import Driver

    Driver.objects.filter(organisation=small_city.organisation).update(is_online=False)
    simulator = make_simulator(small_city, graph, max_backlog=3, orders_per_minute=600.0)
    start = timezone.now()
    for i in range(4):
        simulator.tick(start + timedelta(seconds=2 * (i + 1)))
    assert Order.objects.filter(status=OrderStatus.CREATED).count() == 3


def test_refused_orders_are_counted_not_fatal(small_city, graph):
    def refuse(payload, key):
        raise OrderRejected(400, '{"error": "nope"}')

    simulator = make_simulator(small_city, graph)
    simulator.place_order = refuse
    report = simulator.tick(timezone.now())
    assert report.placed == 0 and report.rejected == 2
    assert Order.objects.count() == 0


def test_order_payload_is_valid_and_windows_start_now(small_city, graph):
    from dispatch.api.serializers import OrderCreateSerializer
    from fleet.models import Hub

    simulator = make_simulator(small_city, graph)
    now = timezone.now()
    hubs = list(Hub.objects.all())
    for _ in range(20):
        payload = simulator.order_payload(now=now, hubs=hubs)
        serializer = OrderCreateSerializer(data=payload)
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["pickup"]["window"]["start"] == now
        distance = haversine_m(
            payload["pickup"]["lat"],
            payload["pickup"]["lon"],
            payload["dropoff"]["lat"],
            payload["dropoff"]["lon"],
        )
        assert DROPOFF_MIN_M - 10 <= distance <= DROPOFF_MAX_M + 10


def test_couriers_move_along_waypoints_without_overshooting():
    courier = Courier(lat=60.17, lon=24.94, waypoints=[(60.171, 24.94), (60.171, 24.942)])
    first_leg = haversine_m(60.17, 24.94, 60.171, 24.94)
    Simulator._advance(courier, first_leg / 2)
    assert haversine_m(60.17, 24.94, courier.lat, courier.lon) == pytest.approx(first_leg / 2, rel=1e-3)
    Simulator._advance(courier, 10_000)
    assert (courier.lat, courier.lon) == (60.171, 24.942) and courier.waypoints == []


def test_signature_is_a_small_png():
    data = signature_png(random.Random(1))
    assert data.startswith(b"\x89PNG") and len(data) < 20_000


@pytest.mark.django_db(transaction=True)
def test_api_order_placer_posts_over_http(live_server, graph):
    seeded = seed_demo_city(graph=graph, driver_count=2)
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        assert wait_until_healthy(client, timeout_s=5)
        simulator = Simulator(
            organisation=seeded.organisation,
            graph=graph,
            place_order=ApiOrderPlacer(client, seeded.api_key_plaintext),
            rng=random.Random(2),
            orders_per_minute=60.0,
        )
        report = simulator.tick(timezone.now())
        assert report.placed == 2 and report.rejected == 0
        with pytest.raises(OrderRejected) as refused:
            ApiOrderPlacer(client, "frk_bad_key")(simulator.order_payload(now=timezone.now(), hubs=[]), "k-1")
        assert refused.value.status_code == 401
    assert Order.objects.filter(organisation=seeded.organisation).count() == 2


def test_wait_until_healthy_gives_up_on_a_dead_server():
    with httpx.Client(base_url="http://127.0.0.1:9", timeout=0.2) as client:
        assert wait_until_healthy(client, timeout_s=0.6) is False


def test_the_simulator_places_orders_only_where_the_city_has_zones(small_city, graph):
    """The street extract reaches beyond the zones; an order placed there would be refused."""
    from django.contrib.gis.geos import Point

    from fleet.models import Hub, Zone

    simulator = make_simulator(small_city, graph)
    zones = Zone.objects.filter(organisation=small_city.organisation)
    hubs = list(Hub.objects.filter(organisation=small_city.organisation))
    outside = []
    for _ in range(300):
        payload = simulator.order_payload(now=timezone.now(), hubs=hubs)
        for leg in ("pickup", "dropoff"):
            point = Point(payload[leg]["lon"], payload[leg]["lat"], srid=4326)
            if not zones.filter(area__intersects=point).exists():
                outside.append((leg, payload[leg]["lat"], payload[leg]["lon"]))
    assert not outside, outside[:5]
