"""Drivers' routes: stops inserted where the engine plans them when an order is assigned (an
accepted offer or a manual assignment), completed as the order moves, removed when it leaves
the driver; ETAs, re-sequencing, `order.eta_changed`, and the driver API's route."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import DomainEvent
from dispatch.models import Route, Stop
from dispatch.services import routes, sla
from dispatch.services.offers import accept_offer
from dispatch.services.orders import create_order, transition_order
from fleet import services as fleet_services
from tests.dispatch.test_offers import offer
from tests.dispatch.test_rounds import LAT, LON, SYSTEM, driver_at, new_order


def assign(org, order, driver):
    return transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=driver)


def move(org, order, *actions, reason=""):
    for action in actions:
        transition_order(order_id=order.id, organisation=org, action=action, actor=SYSTEM, reason=reason)


def plan(driver) -> list[tuple[str, str]]:
    """The driver's open stops in order, as (order ref, kind)."""
    route = Route.objects.get(driver=driver, status=Route.Status.ACTIVE)
    return [
        (s.order.external_ref, s.kind)
        for s in Stop.objects.filter(route=route, completed_at=None).select_related("order")
    ]


def test_accepting_an_offer_puts_the_orders_stops_on_the_drivers_route_with_etas(org):
    driver = driver_at(org, 1)
    order = new_order(org, "R-1")
    accept_offer(offer_id=offer(org, driver, order).id, driver=driver, actor=SYSTEM)
    route = Route.objects.get(driver=driver, status=Route.Status.ACTIVE)
    stops = list(route.stops.order_by("sequence"))
    assert [(s.kind, s.sequence) for s in stops] == [("pickup", 1), ("dropoff", 2)]
    pickup, dropoff = stops
    assert pickup.window_end == order.pickup_window_end and dropoff.window_end == order.dropoff_window_end
    assert pickup.service_s == routes.SERVICE_SECONDS["pickup"]
    # The pickup opens in 5 min and the driver is at it: the ETA is when it starts, as it opens.
    assert abs((pickup.planned_arrival_at - order.pickup_window_start).total_seconds()) < 1
    assert dropoff.planned_arrival_at > pickup.planned_arrival_at
    assert route.sequenced_by == "insertion" and route.etas_at is not None
    # The first ETAs are the baseline later changes are measured from: nothing is sent yet.
    assert pickup.announced_arrival_at == pickup.planned_arrival_at
    assert not DomainEvent.objects.filter(event_type="order.eta_changed").exists()


def test_a_second_order_is_inserted_where_the_engine_plans_it(org):
    driver = driver_at(org, 1)
    start = timezone.now()
    far = new_order(org, "FAR", lat=LAT + 0.03, start=start)
    assign(org, far, driver)
    assert plan(driver) == [("FAR", "pickup"), ("FAR", "dropoff")]
    # A short job on the way (its drop-off 400 m south of its pickup, still on the way north):
    # the engine does it first, before the far one.
    near = new_order(org, "NEAR", lat=LAT + 0.008, start=start)
    assign(org, near, driver)
    assert plan(driver) == [("NEAR", "pickup"), ("NEAR", "dropoff"), ("FAR", "pickup"), ("FAR", "dropoff")]
    etas = list(
        Stop.objects.filter(route__driver=driver)
        .order_by("sequence")
        .values_list("planned_arrival_at", flat=True)
    )
    assert etas == sorted(etas)


def test_stops_complete_as_the_order_moves_and_the_route_closes_when_done(org):
    driver = driver_at(org, 1)
    order = new_order(org, "R-1")
    assign(org, order, driver)
    move(org, order, "start_pickup", "arrive_pickup")
    pickup = Stop.objects.get(order=order, kind="pickup")
    assert pickup.arrived_at is not None and pickup.completed_at is None
    move(org, order, "pick_up")
    assert plan(driver) == [("R-1", "dropoff")]
    move(org, order, "arrive_dropoff")
    assert Stop.objects.get(order=order, kind="dropoff").arrived_at is not None
    route = Route.objects.get(driver=driver)
    # Delivering needs a proof; an override finishes the order the same way.
    from dispatch.services.orders import force_order_status

    force_order_status(
        order_id=order.id, organisation=org, to_status="DELIVERED", actor=SYSTEM, reason="Proof on paper."
    )
    route.refresh_from_db()
    assert route.status == Route.Status.COMPLETED
    assert list(route.stops.values_list("completed_at", flat=True)) != [None, None]


@pytest.mark.parametrize(
    "leave", [("release", "Taken back."), ("cancel", "Customer cancelled.")], ids=["release", "cancel"]
)
def test_an_order_leaving_the_driver_leaves_their_route(org, leave):
    driver = driver_at(org, 1)
    keep, gone = new_order(org, "KEEP"), new_order(org, "GONE")
    assign(org, keep, driver)
    assign(org, gone, driver)
    move(org, gone, leave[0], reason=leave[1])
    assert plan(driver) == [("KEEP", "pickup"), ("KEEP", "dropoff")]
    assert [s.sequence for s in Stop.objects.filter(route__driver=driver).order_by("sequence")] == [1, 2]


def test_reassigning_moves_the_stops_to_the_new_drivers_route(org):
    first, second = driver_at(org, 1), driver_at(org, 2)
    order = new_order(org, "R-1")
    assign(org, order, first)
    move(org, order, "release", reason="Dispatcher moves it.")
    assign(org, order, second)
    assert not Stop.objects.filter(route__driver=first).exists()
    assert plan(second) == [("R-1", "pickup"), ("R-1", "dropoff")]
    assert Route.objects.get(driver=first).status == Route.Status.COMPLETED


def test_a_late_route_is_resequenced_closing_windows_first(org):
    driver = driver_at(org, 1)
    now = timezone.now()
    # Far order first in the current plan, with a loose promise; a near one closes soon.
    loose = new_order(org, "LOOSE", lat=LAT + 0.03, start=now + timedelta(minutes=1))
    assign(org, loose, driver)
    tight = new_order(org, "TIGHT", lat=LAT + 0.001, start=now + timedelta(minutes=1))
    Stop.objects.filter(order=loose).update(window_end=now + timedelta(hours=5))
    assign(org, tight, driver)
    Stop.objects.filter(order=tight, kind="dropoff").update(window_end=now + timedelta(minutes=8))
    routes.resequence_route(driver_id=driver.id, actor=SYSTEM, reason="test")
    assert plan(driver)[:2] == [("TIGHT", "pickup"), ("TIGHT", "dropoff")]
    late = Stop.objects.get(order=tight, kind="dropoff").predicted_late_s
    assert late == 0


def test_a_resequencing_that_moves_stops_records_them(org):
    """`route.resequenced` names each stop moved, with its position and ETA before and after
    (the scorecards read it as lateness the driver did not cause)."""
    from core.models import DomainEvent
    from scorecards.models import StopResequence

    driver = driver_at(org, 1)
    now = timezone.now()
    loose = new_order(org, "LOOSE", lat=LAT + 0.03, start=now + timedelta(minutes=1))
    assign(org, loose, driver)
    tight = new_order(org, "TIGHT", lat=LAT + 0.001, start=now + timedelta(minutes=1))
    Stop.objects.filter(order=loose).update(window_end=now + timedelta(hours=5))
    assign(org, tight, driver)
    Stop.objects.filter(order=tight, kind="dropoff").update(window_end=now + timedelta(minutes=8))
    route = Route.objects.get(driver=driver)
    Stop.objects.filter(route=route).update(sequence=F("sequence") + 100)
    for position, (order, kind) in enumerate(
        [(loose, "pickup"), (loose, "dropoff"), (tight, "pickup"), (tight, "dropoff")], start=1
    ):
        Stop.objects.filter(route=route, order=order, kind=kind).update(sequence=position)
    routes.resequence_route(driver_id=driver.id, actor=SYSTEM, reason="test")
    assert plan(driver)[:2] == [("TIGHT", "pickup"), ("TIGHT", "dropoff")]
    [event] = DomainEvent.objects.filter(event_type="route.resequenced")
    moved = {(m["order_id"], m["stop"]): m for m in event.payload["moved"]}
    assert (
        moved[(str(loose.id), "pickup")]["from_position"],
        moved[(str(loose.id), "pickup")]["to_position"],
    ) == (1, 3)
    assert moved[(str(tight.id), "dropoff")]["to_position"] == 2
    assert set(StopResequence.objects.filter(order=loose).values_list("kind", flat=True)) == {
        "pickup",
        "dropoff",
    }


def test_eta_changed_is_sent_only_past_the_threshold(org, settings):
    settings.ETA_CHANGE_NOTIFY_SECONDS = 300
    driver = driver_at(org, 1)
    order = new_order(org, "R-1")
    assign(org, order, driver)
    route = Route.objects.get(driver=driver)

    def eta_events():
        return DomainEvent.objects.filter(event_type="order.eta_changed").count()

    before = eta_events()
    routes.refresh_route(route_id=route.id, actor=SYSTEM, now=timezone.now() + timedelta(minutes=2))
    assert eta_events() == before  # 2 min later: the pickup's ETA did not move past 5 min
    # The driver went 3 km the wrong way: every ETA moves by far more than the threshold.
    fleet_services.record_ping(
        driver=driver,
        ping=fleet_services.PingInput(lat=LAT + 0.03, lon=LON, recorded_at=timezone.now()),
    )
    routes.refresh_route(route_id=route.id, actor=SYSTEM, now=timezone.now() + timedelta(minutes=10))
    events = DomainEvent.objects.filter(event_type="order.eta_changed").order_by("-sequence")[:2]
    assert eta_events() == before + 2
    assert all(e.payload["previous_eta"] for e in events)
    assert all(e.client_id == order.client_id for e in events)


def test_the_driver_api_shows_the_route_in_order(org):
    from rest_framework.test import APIClient

    from identity.models import Role
    from tests.conftest import make_user

    user = make_user(org, Role.DRIVER, "courier")
    driver = driver_at(org, 1)
    driver.user = user
    driver.save()
    one, two = new_order(org, "R-1"), new_order(org, "R-2")
    assign(org, one, driver)
    assign(org, two, driver)
    client = APIClient()
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/api/v1/driver/route").json()
    assert len(queries) < 15
    assert [(s["external_ref"], s["kind"]) for s in body["stops"]] == plan(driver)
    assert [s["sequence"] for s in body["stops"]] == sorted(s["sequence"] for s in body["stops"])
    first = body["stops"][0]
    assert set(first) >= {"eta", "window", "service_s", "predicted_late_s", "at_risk", "address", "location"}
    assert first["address"] == "Pickup"
    empty = make_user(org, Role.DRIVER, "new-courier")
    other = driver_at(org, 2)
    other.user = empty
    other.save()
    client.force_login(empty)
    assert client.get("/api/v1/driver/route").json() == {
        "id": None,
        "etas_at": None,
        "sequenced_by": "",
        "stops": [],
    }


def test_a_traffic_event_resequences_the_organisations_routes(
    org, other_org, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from core.events import record_event, register_event_types

    register_event_types({"traffic.changed": "Travel times changed (test)."})
    ours, theirs = driver_at(org, 1), driver_at(other_org, 2)
    assign(org, new_order(org, "R-1"), ours)
    assign(other_org, new_order(other_org, "R-2"), theirs)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        record_event(
            organisation=org,
            event_type="traffic.changed",
            subject_type="organisation",
            subject_id=org.id,
            actor=SYSTEM,
            payload={},
        )
    # Only our route was retimed (re-sequenced, its order kept when no better one saves time).
    assert Route.objects.get(driver=ours).etas_at > Route.objects.get(driver=theirs).etas_at


def test_a_round_plans_around_the_drivers_route_as_it_stands(org):
    from dispatch.services.dispatch_settings import rules_for
    from dispatch.services.round_inputs import load_round_inputs

    driver = driver_at(org, 1)
    near = new_order(org, "NEAR", lat=LAT + 0.008, start=timezone.now())
    far = new_order(org, "FAR", lat=LAT + 0.03, start=timezone.now())
    assign(org, far, driver)
    assign(org, near, driver)
    new_order(org, "POOL")
    inputs = load_round_inputs(org, now=timezone.now(), rules=rules_for(None))
    (seen,) = inputs.drivers
    expected = [
        (str(o.id), kind)
        for o, kind in ((near, "pickup"), (near, "dropoff"), (far, "pickup"), (far, "dropoff"))
    ]
    assert [(s.order_id, s.kind) for s in seen.route] == expected
    assert seen.route[0].service_s == routes.SERVICE_SECONDS["pickup"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    settings.DATABASE_IS_SPATIALITE, reason="SQLite has no row locks; its single writer serialises"
)
def test_concurrent_changes_to_one_route_each_apply_once_under_its_lock(org):
    """Two assignments, the driver's own step on a third order and an SLA pass, all at once on
    one driver's route: one active route, every stop once, sequences 1..n, every ETA set."""
    driver = driver_at(org, 1)
    held = new_order(org, "HELD")
    assign(org, held, driver)
    second, third = new_order(org, "SECOND", lat=LAT + 0.004), new_order(org, "THIRD", lat=LAT + 0.008)
    barrier = threading.Barrier(4)
    errors = []

    def run(work):
        try:
            barrier.wait(timeout=5)
            work()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(f"{work}: {exc}")
        finally:
            connection.close()

    works = [
        lambda: assign(org, second, driver),
        lambda: assign(org, third, driver),
        lambda: move(org, held, "start_pickup"),
        sla.watch_slas,
    ]
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [], "\n".join(errors)
    (route,) = Route.objects.filter(driver=driver, status=Route.Status.ACTIVE)
    stops = list(route.stops.order_by("sequence"))
    assert [s.sequence for s in stops] == [1, 2, 3, 4, 5, 6]
    assert sorted((s.order.external_ref, s.kind) for s in stops) == sorted(
        (ref, kind) for ref in ("HELD", "SECOND", "THIRD") for kind in ("pickup", "dropoff")
    )
    assert all(s.planned_arrival_at is not None for s in stops)


def test_a_hubs_run_is_planned_over_its_online_drivers_and_printed(org):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from fleet.models import Driver
    from tests.conftest import make_hub, order_payload
    from tests.dispatch.factories import order_input

    hub = make_hub(org)
    riders = [driver_at(org, n, vehicle="bicycle") for n in (1, 2)]  # 15 kg each
    Driver.objects.filter(id__in=[r.id for r in riders]).update(hub=hub)
    for n in range(3):
        payload = order_payload(f"HUB-{n}", weight_kg="10.00", hub_id=str(hub.id))
        payload["dropoff"]["lat"] += n * 0.002
        create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
    out = StringIO()
    call_command("plan_hub_run", "--org", org.slug, "--hub", hub.name, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Run from Central hub at ")
    assert sum("1 drop-offs, back at" in line for line in lines) == 2  # one 10 kg parcel per bicycle
    assert sum(line.startswith("  left over: HUB-") for line in lines) == 1
    with pytest.raises(CommandError, match="--hub"):
        call_command("plan_hub_run", "--org", org.slug, "--hub", "Nowhere")
