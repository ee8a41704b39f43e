"""The demo simulator: orders placed through the API, assigned, driven and delivered."""

import random
import uuid
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
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
    TickReport,
    signature_png,
    wait_until_healthy,
)
from discipline.models import DisciplineDecision
from dispatch.engine.geo import haversine_m
from dispatch.models import (
    DRIVER_HOLDS_STATUSES,
    GeofenceVisit,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    OrderTransition,
)
from dispatch.services.offers import expire_due_offers
from fleet.models import Driver, DriverStatus, LocationPing
from identity.models import ApiKey, DeviceToken
from scorecards.models import DeliveryOutcome, Rating

LIFECYCLE = ["offer", "assign", "start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff", "deliver"]
# Who took each step: the courier on their phone, except arrivals (the geofence, from pings).
PRESSED_BY_THE_COURIER = {"assign", "start_pickup", "pick_up", "deliver"}
SET_BY_THE_GEOFENCE = {"arrive_pickup", "arrive_dropoff"}


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


def in_process_app(environ, start_response):
    """The project's WSGI app, answering in the test's transaction: like Django's test client,
    it keeps the database connection open across the request (no close_old_connections)."""
    handler = WSGIHandler()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = handler(environ, start_response)
        body = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return [body]


@pytest.fixture
def http():
    """HTTP to the app in this process (httpx over WSGI): the real URL routing, middleware,
    authentication and serializers, without a server thread."""
    transport = httpx.WSGITransport(app=in_process_app)
    with httpx.Client(base_url="http://testserver", transport=transport) as client:
        yield client


def make_simulator(seeded, graph, http=None, **options):
    defaults = {
        "orders_per_minute": 60.0,
        "max_backlog": 4,
        "speed_multiplier": 40.0,
        "tick_seconds": 2.0,
        "service_bbox": city.BBOX,
        "device_tokens": seeded.device_tokens,
        "api_key": seeded.api_key_plaintext,
    }
    return Simulator(
        organisation=seeded.organisation,
        graph=graph,
        place_order=drf_placer(seeded.api_key_plaintext),
        rng=random.Random(11),
        http=http,
        **(defaults | options),
    )


def run_ticks(simulator, *, until, most=400, seconds=2):
    """Tick on a travelling clock (the server sees the same time), expiring offers as the
    beat does, until `until(totals)` or `most` ticks; the totals of the reports."""
    totals: dict[str, int] = {}
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(most):
            clock.shift(timedelta(seconds=seconds))
            report = simulator.tick(timezone.now())
            expire_due_offers()
            for key, value in vars(report).items():
                totals[key] = totals.get(key, 0) + value
            if until(totals):
                break
    return totals


def test_ticks_place_assign_drive_and_deliver(small_city, graph, http):
    org = small_city.organisation
    simulator = make_simulator(small_city, graph, http)
    totals = run_ticks(simulator, until=lambda t: t.get("delivered", 0) >= 2)
    assert totals["delivered"] >= 2, totals
    assert totals["rejected"] == 0, "the simulator placed an order the API refuses (outside the zones?)"
    assert totals["online"] == 6 and totals["pings"] > 0 and totals["arrivals"] >= 4

    orders = Order.objects.filter(organisation=org)
    assert orders.count() == totals["placed"] > 0
    # Orders came in through the API with the demo key, not from the database directly.
    key = ApiKey.objects.get(organisation=org, name="demo-simulator")
    assert key.last_used_at is not None
    from core.models import DomainEvent

    created = DomainEvent.objects.filter(organisation=org, event_type="order.created")
    assert created.count() == totals["placed"]
    assert set(created.values_list("actor_api_key", flat=True)) == {key.id}
    # The couriers went online on their phones (device tokens), not by the seed.
    online = DomainEvent.objects.filter(organisation=org, event_type="driver.online")
    assert set(online.values_list("actor_type", flat=True)) == {"driver"}
    assert DeviceToken.objects.filter(user__organisation=org, last_used_at__isnull=False).count() == 6

    delivered = orders.filter(status=OrderStatus.DELIVERED)
    assert delivered.count() == totals["delivered"]
    for order in delivered:
        steps = list(OrderTransition.objects.filter(order=order).values_list("action", flat=True))
        # Offered by the dispatch round (again after a courier declined or let it lapse),
        # accepted, then driven.
        assert steps[-len(LIFECYCLE) :] == LIFECYCLE, steps
        assert steps[: -len(LIFECYCLE)] == ["offer", "release"] * (len(steps) // 2 - 3), steps
        rows = OrderTransition.objects.filter(order=order)
        actors = {row.action: (row.actor_type, row.actor_label, row.actor_user_id) for row in rows}
        assert actors["offer"][1] == "dispatch-round"
        courier_user = order.driver.user_id
        assert {actors[step] for step in PRESSED_BY_THE_COURIER} == {
            ("driver", order.driver.user.username, courier_user)
        }
        assert {actors[step][:2] for step in SET_BY_THE_GEOFENCE} == {("system", "geofence")}
        arrival = rows.get(action="arrive_dropoff")
        assert arrival.reason.startswith("Arrived at the drop-off by GPS:"), arrival.reason
        visits = GeofenceVisit.objects.filter(order=order, driver=order.driver)
        assert {v.kind for v in visits if v.entered_at} == {"pickup", "dropoff"}
        assert all(v.evidence["entry"] for v in visits if v.entered_at)
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
        # The courier really drove there: pings along the way, the last ones at the door.
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


def test_couriers_accept_decline_and_let_offers_lapse(small_city, graph, http):
    """The auction shows: with seeded randomness some offers are declined, some lapse (and a
    later offer of the same order carries its attempt number), most are accepted."""
    simulator = make_simulator(small_city, graph, http, decline_share=0.25, ignore_share=0.25)
    totals = run_ticks(
        simulator, until=lambda t: t.get("declined", 0) and t.get("ignored", 0) and t.get("assigned", 0) >= 3
    )
    assert totals["declined"] and totals["ignored"] and totals["assigned"] >= 3, totals
    statuses = set(Offer.objects.values_list("status", flat=True))
    assert {OfferStatus.ACCEPTED, OfferStatus.DECLINED} <= statuses
    run_ticks(simulator, until=lambda t: Offer.objects.filter(status=OfferStatus.EXPIRED).exists(), most=40)
    expired = Offer.objects.filter(status=OfferStatus.EXPIRED).first()
    assert expired is not None and expired.reason == "Not answered in time."
    declined = Offer.objects.filter(status=OfferStatus.DECLINED).first()
    assert declined.responded_at is not None


def test_recipients_rate_delivered_orders_through_their_link(small_city, graph, http):
    """Most recipients rate: the sender reads the order's rating link over the API, the
    recipient sends the page's form (CSRF cookie and token). Ratings land as scorecards.Rating,
    one per delivered order, and show on the courier's scorecard."""
    simulator = make_simulator(small_city, graph, http)
    totals = run_ticks(simulator, until=lambda t: t.get("rated", 0) >= 3)
    assert totals["rated"] >= 3 and totals["rating_refused"] == 0, totals
    assert totals["rated"] <= totals["delivered"]
    ratings = list(Rating.objects.select_related("order"))
    assert len(ratings) == totals["rated"]
    assert len({rating.order_id for rating in ratings}) == len(ratings)
    for rating in ratings:
        assert 1 <= rating.stars <= 5
        assert rating.order.status == OrderStatus.DELIVERED and rating.driver_id == rating.order.driver_id
        assert len(rating.comment) <= 500
    rated_driver = ratings[0].driver
    mine = [r.stars for r in ratings if r.driver_id == rated_driver.id]
    token = small_city.device_tokens[str(rated_driver.id)]
    card = http.get("/api/v1/driver/scorecard", headers={"Authorization": f"Device {token}"})
    assert card.status_code == 200, card.text
    shown = card.json()["windows"]["7d"]
    assert shown["rating_count"] == len(mine)
    assert shown["rating_mean"] == pytest.approx(sum(mine) / len(mine), abs=0.01)


def test_a_second_rating_is_refused_and_counted(small_city, graph, http):
    simulator = make_simulator(small_city, graph, http, rating_share=1.0)
    run_ticks(simulator, until=lambda t: t.get("rated", 0) >= 1)
    rated_before = set(Rating.objects.values_list("id", flat=True))  # one tick may deliver two
    rating = Rating.objects.order_by("rated_at").first()
    report = TickReport()
    simulator.recipients.rate(str(rating.order_id), report=report)  # 409: rated already
    undelivered = Order.objects.exclude(status=OrderStatus.DELIVERED).first()
    simulator.recipients.rate(str(undelivered.id), report=report)  # no link
    simulator.recipients.rate(str(uuid.uuid4()), report=report)  # 404 from the orders API
    assert (report.rated, report.rating_refused) == (0, 3)
    assert set(Rating.objects.values_list("id", flat=True)) == rated_before


def test_backlog_cap_stops_new_orders(small_city, graph):
    # No phones: nobody goes online, nobody takes work.
    simulator = make_simulator(small_city, graph, max_backlog=3, orders_per_minute=600.0, device_tokens={})
    start = timezone.now()
    for i in range(4):
        simulator.tick(start + timedelta(seconds=2 * (i + 1)))
    assert Order.objects.filter(status=OrderStatus.CREATED).count() == 3


def test_orders_whose_pickup_window_closed_do_not_hold_up_new_ones(small_city, graph):
    """After a pause (a laptop asleep) the old backlog is never offered again (its pickup window
    closed); the simulator places fresh orders instead of waiting on it forever."""
    simulator = make_simulator(small_city, graph, max_backlog=3, orders_per_minute=600.0, device_tokens={})
    start = timezone.now()
    simulator.tick(start + timedelta(seconds=2))
    assert simulator.tick(start + timedelta(seconds=4)).placed == 0
    after_the_pause = start + timedelta(minutes=31)
    assert simulator.tick(after_the_pause).placed == 3
    assert (
        Order.objects.filter(status=OrderStatus.CREATED, pickup_window_end__gt=after_the_pause).count() == 3
    )


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
            http=client,
            device_tokens=seeded.device_tokens,
        )
        report = simulator.tick(timezone.now())
        assert report.placed == 2 and report.rejected == 0
        placed = report.placed
        # The couriers' phones went online over real HTTP and sent their first pings.
        assert report.online == 2
        assert Driver.objects.filter(organisation=seeded.organisation, is_online=True).count() == 2
        for _ in range(2):
            placed += simulator.tick(timezone.now()).placed
        assert LocationPing.objects.filter(driver__organisation=seeded.organisation).count() > 2
        with pytest.raises(OrderRejected) as refused:
            ApiOrderPlacer(client, "frk_bad_key")(simulator.order_payload(now=timezone.now(), hubs=[]), "k-1")
        assert refused.value.status_code == 401
    assert Order.objects.filter(organisation=seeded.organisation).count() == placed


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


def test_default_rules_warn_then_suspend_a_late_courier_and_the_simulator_carries_on(db, graph, http):
    """Deliveries made late (the clock jumps past the promise while the courier carries the
    order, as a paused demo would) meet the default late_streak rule: 3 in a row warn, 3 more
    suspend (a normal run is never late: the windows close 75 minutes after the order). The
    suspended courier leaves the simulated world: no go-online, no offers answered,
    their pending offers lapse, and the ticks go on without errors."""
    seeded = seed_demo_city(graph=graph, driver_count=1)
    driver = Driver.objects.get(organisation=seeded.organisation)
    simulator = make_simulator(seeded, graph, http, orders_per_minute=20.0, max_backlog=2)
    made_late: set[str] = set()
    with time_machine.travel(timezone.now(), tick=False) as clock:

        def step():
            clock.shift(timedelta(seconds=2))
            report = simulator.tick(timezone.now())
            expire_due_offers()
            return report

        for _ in range(1500):
            courier = simulator.couriers.get(driver.id)
            order = courier.order if courier else None
            if order and order.status == OrderStatus.PICKED_UP and order.id not in made_late:
                # On the way, out of the pickup's geofence: a wait at the pickup would excuse it.
                left_the_pickup = GeofenceVisit.objects.filter(
                    order_id=order.id, kind="pickup", exited_at__isnull=False
                ).exists()
                if left_the_pickup:
                    made_late.add(order.id)
                    clock.shift(timedelta(minutes=90))  # past the drop-off window's end
            step()
            driver.refresh_from_db()
            if driver.status == DriverStatus.SUSPENDED:
                break
        assert driver.status == DriverStatus.SUSPENDED, (
            list(DeliveryOutcome.objects.values_list("outcome", "excused_cause", "late_seconds")),
            list(DisciplineDecision.objects.values_list("rule_name", "action", "status")),
        )
        decisions = list(
            DisciplineDecision.objects.filter(driver=driver, rule_name="late_streak").order_by("created_at")
        )
        assert [d.action for d in decisions] == ["WARN", "SUSPEND"]
        late = DeliveryOutcome.objects.filter(driver=driver, outcome="LATE", excused_cause="")
        assert late.count() >= 6
        suspended_at = timezone.now()
        reports = [step() for _ in range(30)]  # past the offers' expiry
    assert simulator.couriers == {}
    assert sum(r.online + r.assigned + r.delivered + r.pings for r in reports) == 0
    assert sum(r.placed for r in reports) <= 2  # the backlog fills up and waits
    assert not Offer.objects.filter(driver=driver, created_at__gt=suspended_at).exists()
    assert not Offer.objects.filter(driver=driver, status=OfferStatus.PENDING).exists()
