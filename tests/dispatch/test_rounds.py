"""Dispatch rounds: the pool and the available drivers read as the engine's inputs, offers made
with readable reasons, the organisation's rules (validated like the engine validates them), one
round at a time per organisation, rounds asked for by events, and the command."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from celery import current_app
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.actors import Actor
from core.exceptions import InvalidTransition
from core.models import DomainEvent
from core.scheduler import beat_jobs
from dispatch import tasks
from dispatch.api.serializers import DriverOfferSerializer
from dispatch.models import DispatchSettings, Offer, OfferStatus, Order, OrderStatus, Stop
from dispatch.selectors import drivers_excluded_for
from dispatch.services import rounds
from dispatch.services.dispatch_settings import rules_for, update_dispatch_settings
from dispatch.services.offers import accept_offer, decline_offer, make_offer
from dispatch.services.orders import create_order, transition_order
from dispatch.services.round_inputs import load_round_inputs
from dispatch.services.rounds import run_round
from fleet import services as fleet_services
from fleet.models import Driver
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test-rounds")
LAT, LON = 60.1690, 24.9410


def new_order(org, ref, *, lat=LAT, lon=LON, start=None, weight="2.50", **overrides):
    """An order whose pickup opens soon at (lat, lon), dropped off 400 m away."""
    start = start or timezone.now() + timedelta(minutes=5)
    payload = order_payload(
        ref=ref,
        pickup={
            "address": "Pickup",
            "lat": lat,
            "lon": lon,
            "window": {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()},
        },
        dropoff={
            "address": "Drop-off",
            "lat": lat - 0.0035,
            "lon": lon,
            "window": {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=90)).isoformat(),
            },
        },
        weight_kg=weight,
        **overrides,
    )
    return create_order(organisation=org, actor=SYSTEM, data=order_input(payload))


def driver_at(org, n, *, lat=LAT, lon=LON, vehicle="car", online=True, located=True):
    driver = make_active_driver(
        org, name=f"Courier {n}", phone=f"+3584010003{n:02d}", vehicle=vehicle, plate=f"RD-{n}"
    )
    if online:
        fleet_services.set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
    if located:
        fleet_services.record_ping(
            driver=driver, ping=fleet_services.PingInput(lat=lat, lon=lon, recorded_at=timezone.now())
        )
    driver.refresh_from_db()
    return driver


def pending(driver):
    return list(Offer.objects.filter(driver=driver, status=OfferStatus.PENDING))


# --- the adapter --------------------------------------------------------------------------------


def test_inputs_take_only_active_online_located_drivers_without_an_offer_to_answer(org):
    ready = driver_at(org, 1)
    driver_at(org, 2, online=False)
    suspended = driver_at(org, 3)
    fleet_services.change_driver_status(
        driver_id=suspended.id, organisation=org, action="suspend", actor=SYSTEM, reason="Checks."
    )
    driver_at(org, 4, located=False)
    busy = driver_at(org, 5)
    make_offer(
        organisation=org,
        driver=busy,
        orders=[new_order(org, "HELD-OFFER")],
        expires_at=timezone.now() + timedelta(minutes=1),
        actor=SYSTEM,
    )
    new_order(org, "OPEN")
    inputs = load_round_inputs(org, now=timezone.now(), rules=rules_for(None))
    assert [d.id for d in inputs.drivers] == [str(ready.id)]
    assert inputs.left_out_drivers == {
        "Courier 4": "no known position yet",
        "Courier 5": "already has an offer to answer",
    }
    # Only the pool: the order on offer is not in it.
    assert [inputs.order_rows[o.id].external_ref for o in inputs.orders] == ["OPEN"]


def test_inputs_carry_vehicle_capacity_load_on_board_and_the_rest_of_the_plan(org):
    bike, van = driver_at(org, 1, vehicle="bicycle"), driver_at(org, 2, vehicle="van")
    carried, planned = new_order(org, "CARRIED", weight="4.00"), new_order(org, "PLANNED", weight="3.00")
    for order in (carried, planned):
        transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=van)
    for action in ("start_pickup", "arrive_pickup", "pick_up"):
        transition_order(order_id=carried.id, organisation=org, action=action, actor=SYSTEM)
    inputs = load_round_inputs(org, now=timezone.now(), rules=rules_for(None))
    by_id = {d.id: d for d in inputs.drivers}
    b, v = by_id[str(bike.id)], by_id[str(van.id)]
    assert (b.capacity_kg, b.capacity_l, b.vehicle_type, b.route, b.status) == (
        15.0,
        40.0,
        "bicycle",
        (),
        "available",
    )
    assert (v.capacity_kg, v.capacity_l) == (1000.0, 6000.0)
    assert (v.load_kg, v.load_l, v.status) == (4.0, 10.0, "busy")
    # The rest of the plan is the van's route as it stands (dispatch.services.routes keeps it):
    # its open stops in their sequence, CARRIED's pickup done.
    stored = Stop.objects.filter(route__driver=van, completed_at=None).order_by("sequence")
    sign = {"pickup": 1, "dropoff": -1}
    expected = [(str(s.order_id), s.kind, sign[s.kind] * float(s.order.weight_kg)) for s in stored]
    assert [(s.order_id, s.kind, s.weight_kg) for s in v.route] == expected
    assert sorted(expected) == sorted(
        [
            (str(carried.id), "dropoff", -4.0),
            (str(planned.id), "pickup", 3.0),
            (str(planned.id), "dropoff", -3.0),
        ]
    )
    assert v.score == 1.0 and v.owned is False


def test_a_driver_who_declined_an_order_is_left_out_for_it_only(org):
    first, second = driver_at(org, 1), driver_at(org, 2, lat=LAT + 0.01)
    declined, other = new_order(org, "DECLINED"), new_order(org, "OTHER", lat=LAT + 0.01)
    offer = make_offer(
        organisation=org,
        driver=first,
        orders=[declined],
        expires_at=timezone.now() + timedelta(minutes=1),
        actor=SYSTEM,
    )
    decline_offer(offer_id=offer.id, driver=first, actor=SYSTEM, reason="Too far.")
    inputs = load_round_inputs(org, now=timezone.now(), rules=rules_for(None))
    assert inputs.excluded == {str(declined.id): {str(first.id)}}
    assert inputs.excluded[str(declined.id)] == {str(d) for d in drivers_excluded_for(declined)}
    assert ((None, str(declined.id)), str(first.id)) in inputs.rules.excluded_drivers
    report = run_round(organisation=org)
    given = {tuple(made.orders): made.driver for made in report.offers}
    assert given == {("DECLINED",): second.name, ("OTHER",): first.name}
    assert Offer.objects.get(orders=other, status=OfferStatus.PENDING).driver_id == first.id


# --- rounds ---------------------------------------------------------------------------------------


def test_a_round_offers_each_order_to_the_nearest_driver_with_reasons(org):
    near_a, near_b = driver_at(org, 1), driver_at(org, 2, lat=LAT + 0.02)
    a, b = new_order(org, "A"), new_order(org, "B", lat=LAT + 0.02)
    report = run_round(organisation=org)
    assert sorted((made.orders[0], made.driver) for made in report.offers) == [
        ("A", near_a.name),
        ("B", near_b.name),
    ]
    assert report.left_open == {} and report.orders == 2 and report.drivers == 2
    for order in (a, b):
        order.refresh_from_db()
        assert order.status == OrderStatus.OFFERED
    offer = Offer.objects.get(orders=a)
    assert offer.driver_id == near_a.id and offer.status == OfferStatus.PENDING
    assert any("min to the pickup" in line for line in offer.explanation)
    assert DriverOfferSerializer(offer).data["explanation"] == offer.explanation  # the driver reads why
    assert 40 <= (offer.expires_at - timezone.now()).total_seconds() <= 45
    event = DomainEvent.objects.get(event_type="offer.created", subject_id=str(offer.id))
    assert event.payload["explanation"] == offer.explanation and event.actor_label == "dispatch-round"
    text = "\n".join(report.lines())
    assert "2 open orders, 2 available drivers, 2 offers" in text and "min to the pickup" in text
    # Written in bulk, with the same trail as one at a time: the order's transition row, its
    # history row (a copy of the row as it is now) and event, the offer's history row.
    transition = a.transitions.get(action="offer")
    assert (transition.from_status, transition.to_status, transition.actor_label) == (
        OrderStatus.CREATED,
        OrderStatus.OFFERED,
        "dispatch-round",
    )
    latest = a.history.order_by("-history_date", "-history_id").first()
    assert (latest.status, latest.history_type, latest.pickup_location) == ("OFFERED", "~", a.pickup_location)
    assert latest.history_change_reason == "offer; by System rule: dispatch-round"
    assert offer.history.get().history_change_reason == "offered; by System rule: dispatch-round"
    assert DomainEvent.objects.filter(event_type="order.offered", subject_id=str(a.id)).count() == 1
    assert set(report.seconds) == {"load", "solve", "write"}


def test_a_rounds_queries_and_pushes_do_not_grow_with_its_size(
    org, other_org, monkeypatch, django_capture_on_commit_callbacks
):
    """The same statements for 2 offers as for 6 (reads set-based, writes in bulk: one insert
    per table, the events numbered together), and one push to the drivers and one to the live
    map after the commit, whatever the number of offers."""
    from dispatch import push

    sent = []
    monkeypatch.setattr(push, "_send_all", lambda messages: sent.append([m["type"] for _, m in messages]))
    counts = {}
    for organisation, n in ((org, 2), (other_org, 6)):
        for i in range(n):
            driver_at(organisation, 10 * n + i, lat=LAT + 0.01 * i)
            new_order(organisation, f"R{i}", lat=LAT + 0.01 * i)
        sent.clear()
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            report = run_round(organisation=organisation)
        assert len(report.offers) == n
        counts[n] = len(queries.captured_queries)
        assert sorted(sent) == [["live.event"] * n, ["offer.created"] * n]
        events = DomainEvent.objects.filter(organisation=organisation).order_by("sequence")
        round_events = [e.event_type for e in events if e.event_type in ("order.offered", "offer.created")]
        assert round_events == ["order.offered"] * n + ["offer.created"] * n
    assert counts[2] == counts[6]


def test_a_driver_with_an_offer_to_answer_gets_no_second_one_and_a_decline_reopens_for_others(org):
    only = driver_at(org, 1)
    order = new_order(org, "ONE")
    first = run_round(organisation=org)
    assert [made.orders for made in first.offers] == [["ONE"]]
    new_order(org, "TWO", lat=LAT + 0.03)
    second = run_round(organisation=org)
    assert second.offers == [] and second.left_out_drivers == {only.name: "already has an offer to answer"}
    assert second.left_open == {"TWO": "no driver available"}
    decline_offer(offer_id=pending(only)[0].id, driver=only, actor=SYSTEM, reason="No.")
    third = run_round(organisation=org)
    assert [made.orders for made in third.offers] == [["TWO"]]
    assert "1 driver(s) left out" in third.left_open["ONE"]
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_capacity_and_closed_pickup_windows_keep_orders_out(org):
    driver_at(org, 1, vehicle="bicycle")
    new_order(org, "HEAVY", weight="40.00")
    past = new_order(org, "LATE", start=timezone.now() - timedelta(minutes=20))
    report = run_round(organisation=org, now=timezone.now() + timedelta(minutes=15))
    assert report.offers == [] and set(report.left_open) == {"HEAVY"}
    past.refresh_from_db()
    assert past.status == OrderStatus.CREATED


# --- settings -------------------------------------------------------------------------------------


def test_dispatch_settings_are_validated_by_the_engine_and_steer_the_round(org):
    with pytest.raises(ValidationError) as bad:
        update_dispatch_settings(organisation=org, rules={"zones": {"mode": "strict"}}, actor=SYSTEM)
    assert "zones.mode" in bad.value.message_dict["rules"][0]
    with pytest.raises(ValidationError) as unknown:
        update_dispatch_settings(organisation=org, rules={"speed": 3}, actor=SYSTEM)
    assert unknown.value.message_dict["rules"][0].startswith("speed: unknown key")
    with pytest.raises(ValidationError) as ttl:
        update_dispatch_settings(organisation=org, offer_ttl_seconds=2, actor=SYSTEM)
    assert "offer_ttl_seconds" in ttl.value.message_dict
    row = update_dispatch_settings(
        organisation=org, rules={"max_pickup_distance_m": 500}, offer_ttl_seconds=90, actor=SYSTEM
    )
    assert (row.rules, row.offer_ttl_seconds) == ({"max_pickup_distance_m": 500}, 90)
    assert DomainEvent.objects.filter(event_type="dispatch.settings_updated").count() == 1
    driver_at(org, 1)
    new_order(org, "NEAR")
    new_order(org, "FAR", lat=LAT + 0.05)
    report = run_round(organisation=org)
    assert [made.orders for made in report.offers] == [["NEAR"]]
    assert report.left_open == {"FAR": "pickup too far"}
    offer = Offer.objects.get()
    assert 85 <= (offer.expires_at - timezone.now()).total_seconds() <= 90


def test_the_admin_saves_dispatch_settings_through_the_service(staff_client, org):
    url = reverse("admin:dispatch_dispatchsettings_add")
    form = {
        "organisation": str(org.id),
        "rules": '{"lateness": {"mode": "never"}}',
        "offer_ttl_seconds": "60",
    }
    page = staff_client.post(url, form)
    assert page.status_code == 200 and "lateness.mode" in page.content.decode()
    assert not DispatchSettings.objects.exists()
    page = staff_client.post(url, {**form, "rules": '{"lateness": {"mode": "forbid"}}'})
    assert page.status_code == 302, page.content.decode()[:2000]
    row = DispatchSettings.objects.get()
    assert (row.rules, row.offer_ttl_seconds) == ({"lateness": {"mode": "forbid"}}, 60)
    event = DomainEvent.objects.get(event_type="dispatch.settings_updated")
    assert event.actor_label == "staff"
    change = reverse("admin:dispatch_dispatchsettings_change", args=[org.id])
    assert staff_client.get(change).status_code == 200
    page = staff_client.post(change, {"rules": '{"k_nearest": 0}', "offer_ttl_seconds": "60"})
    assert page.status_code == 200 and "k_nearest: must be at least 1" in page.content.decode()
    assert DispatchSettings.objects.get().rules == {"lateness": {"mode": "forbid"}}


# --- one round at a time ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_rounds_at_once_never_offer_an_order_twice_or_double_book_a_driver(org):
    drivers = [driver_at(org, n, lat=LAT + 0.002 * n) for n in range(1, 5)]
    orders = [new_order(org, f"R-{n}", lat=LAT + 0.002 * n) for n in range(1, 7)]
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def one_round():
        try:
            barrier.wait(timeout=5)
            reports.append(run_round(organisation=org))
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_round) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(reports) == 2
    offered = [made.orders for report in reports for made in report.offers]
    assert sum(len(refs) for refs in offered) <= len(orders)
    for order in orders:
        assert Offer.objects.filter(orders=order).count() <= 1
    for driver in drivers:
        assert Offer.objects.filter(driver=driver).count() <= 1
    assert Offer.objects.count() == len(drivers)  # four drivers, six orders: each driver one offer


@pytest.mark.django_db(transaction=True)
def test_a_round_and_a_manual_assignment_at_once_leave_the_driver_one_plan(org):
    """A dispatcher assigns work to a courier (one order at a time) while a round may be
    offering them other work: whichever commits first, the courier ends with one order, as an
    acceptance of the round's offer re-checks the plan under the driver's row lock."""
    update_dispatch_settings(organisation=org, rules={"batching": {"max_batch_size": 1}}, actor=SYSTEM)
    courier = driver_at(org, 1)
    new_order(org, "POOL")
    manual = new_order(org, "MANUAL")
    transition_order(order_id=manual.id, organisation=org, action="offer", actor=SYSTEM)  # out of the pool
    barrier = threading.Barrier(2)
    errors = []

    def in_thread(work):
        try:
            barrier.wait(timeout=5)
            work()
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)
        finally:
            connection.close()

    def assign():
        transition_order(order_id=manual.id, organisation=org, action="assign", actor=SYSTEM, driver=courier)

    threads = [
        threading.Thread(target=in_thread, args=(lambda: run_round(organisation=org),)),
        threading.Thread(target=in_thread, args=(assign,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for offer in pending(courier):
        with pytest.raises(InvalidTransition) as refused:
            accept_offer(offer_id=offer.id, driver=courier, actor=SYSTEM)
        assert "no longer take this offer" in refused.value.message
    held = Order.objects.filter(driver=courier).exclude(status=OrderStatus.CREATED)
    assert list(held.values_list("external_ref", flat=True)) == ["MANUAL"]


# --- rounds on events and on a schedule -------------------------------------------------------------


@pytest.fixture
def in_process(settings):
    settings.BACKGROUND_JOBS = "in-process"  # as without REDIS_URL, whatever this run uses
    settings.CELERY_TASK_ALWAYS_EAGER = True


def test_events_ask_for_one_round_per_organisation_and_the_scheduler_runs_it(
    org, in_process, django_capture_on_commit_callbacks
):
    rounds.take_requested()
    with django_capture_on_commit_callbacks(execute=True):
        driver_at(org, 1)
    with django_capture_on_commit_callbacks(execute=True):
        new_order(org, "EVENT-1")
        new_order(org, "EVENT-2", lat=LAT + 0.01)
    assert rounds.take_requested() == [str(org.id)]  # debounced: one for all those events
    with django_capture_on_commit_callbacks(execute=True):
        new_order(org, "EVENT-3", lat=LAT + 0.02)
    assert tasks.run_requested_dispatch_rounds() == 1
    assert rounds.take_requested() == []
    assert Offer.objects.filter(status=OfferStatus.PENDING).count() == 1
    assert tasks.run_requested_dispatch_rounds() == 0


def test_with_celery_an_event_queues_one_round_task_per_organisation(
    org, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.BACKGROUND_JOBS = "celery"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    cache.delete(rounds.queued_key(org.id))
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True):
        driver_at(org, 1)
        new_order(org, "QUEUED-1")
    with django_capture_on_commit_callbacks(execute=True):
        new_order(org, "QUEUED-2", lat=LAT + 0.01)
    assert sent == [("dispatch.run_dispatch_round", [str(org.id)])]  # one queued at a time
    assert tasks.run_dispatch_round(str(org.id)) == 1  # the task frees the slot first
    with django_capture_on_commit_callbacks(execute=True):
        new_order(org, "QUEUED-3", lat=LAT + 0.02)
    assert len(sent) == 2


def test_the_periodic_task_runs_rounds_for_organisations_with_work_and_drivers(org, other_org, in_process):
    driver_at(org, 1)
    new_order(org, "PERIODIC")
    new_order(other_org, "NO-DRIVERS")
    assert rounds.organisations_with_work() == [org]
    assert tasks.run_dispatch_rounds() == 1
    assert Order.objects.get(external_ref="PERIODIC").status == OrderStatus.OFFERED
    names = {job.name: job.interval_s for job in beat_jobs()}
    assert names["run-dispatch-rounds"] == 5.0 and names["run-requested-dispatch-rounds"] == 1.0


# --- the command ----------------------------------------------------------------------------------


def test_the_command_runs_one_round_and_prints_offers_and_what_stays_open(org):
    driver = driver_at(org, 1, vehicle="bicycle")
    new_order(org, "SMALL")
    new_order(org, "HEAVY", weight="40.00", lat=LAT + 0.01)
    out = StringIO()
    call_command("dispatch_round", org="acme", stdout=out)
    text = out.getvalue()
    assert "1 offers" in text and f"SMALL -> {driver.name}" in text and "min to the pickup" in text
    assert "left open HEAVY:" in text
    with pytest.raises(CommandError, match="no organisation"):
        call_command("dispatch_round", org="nope", stdout=StringIO())
    assert Driver.objects.get(id=driver.id).is_online
