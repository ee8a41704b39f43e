"""Predictive dispatch as a product service: the forecast from the organisation's own orders,
suggestions stored with their reason and inputs, pushed to the driver, answered in the driver
API once, lapsing on time, off unless the organisation's rules turn it on."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.utils import timezone

from config.asgi import application
from core.actors import Actor
from core.exceptions import InvalidTransition
from core.models import DomainEvent
from core.scheduler import beat_jobs
from dispatch import tasks
from dispatch.engine.forecast import ForecastConfig, slot_start_at_or_after
from dispatch.models import RepositionSuggestion, SuggestionStatus
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.offers import accept_offer
from dispatch.services.orders import create_order
from dispatch.services.repositioning import (
    answer_suggestion,
    expire_due_suggestions,
    suggest_repositioning,
)
from fleet import services as fleet_services
from fleet.models import Vehicle
from identity.models import Role
from identity.services import issue_device_token
from tests.api.conftest import device_client, offer_to
from tests.conftest import make_active_driver, make_user, order_payload, post
from tests.dispatch.factories import order_input, suggest_to
from tests.dispatch.test_live_map import SOCKET_HEADERS

SYSTEM = Actor.system("test")
HOT = (60.1690, 24.9410)  # where the orders come from
FAR = (60.1870, 24.9410)  # 2 km north
ON = {"reposition": {"enabled": True, "incentive_minor": 150}}


def turn_on(org, rules=ON):
    update_dispatch_settings(organisation=org, rules=rules, actor=SYSTEM)


def place_history(org, now, per_slot=3, slots=3, where=HOT, tag="H"):
    """`per_slot` orders at `where` in each of the last `slots` full half-hours before now."""
    current = slot_start_at_or_after(now.timestamp(), ForecastConfig()) - 1800
    n = 0
    for back in range(1, slots + 1):
        for i in range(per_slot):
            n += 1
            payload = order_payload(ref=f"{tag}-{n}")
            payload["pickup"].update(lat=where[0], lon=where[1])
            order = create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
            placed = datetime.fromtimestamp(current - back * 1800 + 60 * (i + 1), tz=UTC)
            type(order).objects.filter(id=order.id).update(created_at=placed)


def driver_at(org, n, where, user=None):
    driver = make_active_driver(
        org, name=f"Courier {n}", phone=f"+3584010009{n:02d}", plate=f"RP-{n}", user=user
    )
    fleet_services.set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
    fleet_services.record_ping(
        driver=driver,
        ping=fleet_services.PingInput(lat=where[0], lon=where[1], recorded_at=timezone.now()),
    )
    driver.refresh_from_db()
    return driver


def test_off_unless_the_rules_turn_it_on(org):
    place_history(org, timezone.now())
    driver_at(org, 1, FAR)
    report = suggest_repositioning(organisation=org)
    assert "off" in report.skipped
    assert not RepositionSuggestion.objects.exists()


def test_an_idle_driver_away_from_expected_orders_is_told_where_and_why(org):
    now = timezone.now()
    place_history(org, now)
    turn_on(org)
    near = driver_at(org, 1, HOT)
    far = driver_at(org, 2, FAR)
    report = suggest_repositioning(organisation=org, now=now)
    assert report.idle_drivers == 2
    assert 1.5 < report.forecast_orders < 3  # 9 orders over three half-hours, the last weighing most
    [suggestion] = report.suggestions
    assert suggestion.driver_id == far.id and suggestion.status == SuggestionStatus.PENDING
    assert not RepositionSuggestion.objects.filter(driver=near).exists()  # already there
    # Where: the centre of the busy cell, about 2 km south of the driver.
    assert suggestion.target.distance(near.last_location) < 0.01
    assert 1500 < suggestion.distance_m < 2600
    assert suggestion.drivers_near == 1  # the driver already there
    # Why, in words, with the incentive the rules set, and what it was decided from.
    assert "orders are expected near this spot in the next 30 minutes" in suggestion.reason
    assert "Accepting pays 1.50 EUR." in suggestion.reason
    assert "orders placed in the last" in suggestion.reason
    assert suggestion.inputs["forecast"]["orders_used"] == 9
    assert suggestion.inputs["from"]["lat"] == pytest.approx(FAR[0])
    assert suggestion.inputs["settings"]["incentive_minor"] == 150
    assert (suggestion.incentive_minor, suggestion.currency) == (150, "EUR")
    assert timedelta(minutes=9) < suggestion.expires_at - now <= timedelta(minutes=10, seconds=5)
    event = DomainEvent.objects.get(event_type="reposition.suggested")
    assert event.payload["suggestion_id"] == str(suggestion.id) and event.reason == suggestion.reason
    # A second run suggests nothing new: the driver has one to answer.
    assert suggest_repositioning(organisation=org, now=now).suggestions == []
    assert RepositionSuggestion.objects.count() == 1


def test_orders_placed_after_now_are_not_used(org):
    now = timezone.now()
    place_history(org, now)
    turn_on(org)
    driver_at(org, 2, FAR)
    report = suggest_repositioning(organisation=org, now=now - timedelta(hours=3))
    assert report.forecast_orders == 0 and report.suggestions == []


def test_busy_drivers_are_not_sent_and_count_where_they_will_be(org):
    now = timezone.now()
    place_history(org, now)
    turn_on(org)
    carrying = driver_at(org, 1, FAR)
    payload = order_payload(ref="CARRIED")
    payload["dropoff"].update(lat=HOT[0], lon=HOT[1])
    carried = create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
    accept_offer(offer_id=offer_to(carrying, carried).id, driver=carrying, actor=SYSTEM)
    asked = driver_at(org, 2, FAR)
    offer_to(asked, create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="O"))))
    unequipped = driver_at(org, 4, FAR)
    Vehicle.objects.filter(driver=unequipped).update(is_active=False)
    report = suggest_repositioning(organisation=org, now=now)
    assert report.idle_drivers == 0 and report.suggestions == []
    # An idle driver: the carrier will be free at the busy spot, so one driver is still lacking.
    idle = driver_at(org, 3, FAR)
    [suggestion] = suggest_repositioning(organisation=org, now=now).suggestions
    assert suggestion.driver_id == idle.id and suggestion.drivers_near == 1


def test_the_settings_are_checked_by_the_rules_parser(org):
    for bad, path in (
        ({"enabled": "yes"}, "reposition.enabled"),
        ({"max_distance_m": 5}, "reposition.max_distance_m"),
        ({"incentive_minor": -1}, "reposition.incentive_minor"),
        ({"ttl_minutes": 0}, "reposition.ttl_minutes"),
        ({"radius": 1}, "reposition.radius"),
    ):
        with pytest.raises(ValidationError) as caught:
            update_dispatch_settings(organisation=org, rules={"reposition": bad}, actor=SYSTEM)
        assert path in caught.value.message_dict["rules"][0]


def test_answered_once_in_the_driver_api_and_lapsing_on_time(org):
    user = make_user(org, Role.DRIVER, "mover")
    driver = driver_at(org, 1, FAR, user=user)
    client = device_client(issue_device_token(user=user, name="Phone"))
    first = suggest_to(driver, incentive_minor=200)
    listed = client.get("/api/v1/driver/reposition-suggestions").json()
    assert [s["id"] for s in listed] == [str(first.id)]
    shown = listed[0]
    assert shown["status"] == "PENDING" and shown["reason"] and shown["inputs"]["forecast"]
    assert shown["target"] == {"lat": pytest.approx(first.target.y), "lon": pytest.approx(first.target.x)}
    assert shown["incentive_minor"] == 200
    accepted = post(client, f"/api/v1/driver/reposition-suggestions/{first.id}/accept", {})
    assert accepted.status_code == 200 and accepted.json()["status"] == "ACCEPTED"
    again = post(client, f"/api/v1/driver/reposition-suggestions/{first.id}/dismiss", {})
    assert again.status_code == 409
    assert "accepted" in again.json()["error"]["message"]
    # The next one is dismissed; one past its expiry can no longer be answered, and lapses.
    second = suggest_to(driver)
    assert (
        post(client, f"/api/v1/driver/reposition-suggestions/{second.id}/dismiss", {}).json()["status"]
        == "DISMISSED"
    )
    third = suggest_to(driver)
    RepositionSuggestion.objects.filter(id=third.id).update(
        created_at=timezone.now() - timedelta(minutes=11), expires_at=timezone.now() - timedelta(seconds=1)
    )
    late = post(client, f"/api/v1/driver/reposition-suggestions/{third.id}/accept", {})
    assert late.status_code == 409 and "expired" in late.json()["error"]["message"]
    assert expire_due_suggestions() == 1
    third.refresh_from_db()
    assert third.status == SuggestionStatus.EXPIRED
    types = list(
        DomainEvent.objects.filter(event_type__startswith="reposition.")
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )
    assert types == [
        "reposition.suggested",
        "reposition.accepted",
        "reposition.suggested",
        "reposition.dismissed",
        "reposition.suggested",
        "reposition.expired",
    ]


def test_one_pending_suggestion_per_driver(org):
    driver = driver_at(org, 1, FAR)
    suggest_to(driver)
    with pytest.raises(ValidationError, match="already has a suggestion"):
        suggest_to(driver)


def test_the_beat_runs_it_with_celery_and_in_process(org, settings):
    entry = django_settings.CELERY_BEAT_SCHEDULE["suggest-repositioning"]
    assert entry["task"] == "dispatch.suggest_repositioning"
    settings.BACKGROUND_JOBS = "in-process"
    assert "suggest-repositioning" in [job.name for job in beat_jobs()]
    now = timezone.now()
    place_history(org, now)
    driver_at(org, 2, FAR)
    assert tasks.suggest_repositioning() == 0  # off
    turn_on(org)
    assert tasks.suggest_repositioning() == 1


@pytest.mark.django_db(transaction=True)
def test_the_driver_hears_of_a_suggestion_on_their_socket(org):
    user = make_user(org, Role.DRIVER, "listener")
    driver = driver_at(org, 1, FAR, user=user)
    token = issue_device_token(user=user, name="Phone").plaintext

    async def scenario():
        app = WebsocketCommunicator(application, "/ws/driver/", headers=SOCKET_HEADERS)
        connected, _ = await app.connect(timeout=5)
        assert connected
        await app.send_json_to({"type": "auth", "token": token})
        assert (await app.receive_json_from(timeout=5))["type"] == "ready"
        made = await database_sync_to_async(suggest_to)(driver)
        pushed = await app.receive_json_from(timeout=5)
        assert pushed["type"] == "reposition"
        assert pushed["reposition"]["id"] == str(made.id)
        assert "orders are expected" in pushed["reposition"]["reason"]
        await app.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(django_settings.DATABASE_IS_SPATIALITE, reason="row locks: PostgreSQL")
def test_two_answers_at_once_apply_one(org):
    driver = driver_at(org, 1, FAR)
    suggestion = suggest_to(driver)
    barrier = threading.Barrier(2)
    outcomes = []

    def answer(action):
        try:
            barrier.wait()
            answer_suggestion(suggestion_id=suggestion.id, driver=driver, action=action, actor=SYSTEM)
            outcomes.append(action)
        except (InvalidTransition, OperationalError) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(a,)) for a in ("accept", "dismiss")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    suggestion.refresh_from_db()
    assert sorted(outcomes, key=str) in (["InvalidTransition", "accept"], ["InvalidTransition", "dismiss"])
    assert suggestion.status in (SuggestionStatus.ACCEPTED, SuggestionStatus.DISMISSED)
    assert (
        DomainEvent.objects.filter(event_type__in=["reposition.accepted", "reposition.dismissed"]).count()
        == 1
    )


@pytest.mark.parametrize("how", ["offline", "took work", "suspended"])
def test_a_suggestion_lapses_when_it_no_longer_applies(org, how):
    driver = driver_at(org, 1, FAR)
    suggestion = suggest_to(driver)
    if how == "offline":
        fleet_services.set_driver_online(driver_id=driver.id, organisation=org, online=False, actor=SYSTEM)
        why = "You went offline."
    elif how == "took work":
        work = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="W")))
        accept_offer(offer_id=offer_to(driver, work).id, driver=driver, actor=SYSTEM)
        why = "You took work; the suggestion no longer applies."
    else:
        fleet_services.change_driver_status(
            driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Checks."
        )
        why = "You can no longer take work."
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.EXPIRED
    assert DomainEvent.objects.get(event_type="reposition.expired").reason == why


def test_the_command_runs_it_once_and_prints_each_suggestion_with_its_reason(org, capsys):
    from django.core.management import CommandError, call_command

    place_history(org, timezone.now())
    driver_at(org, 2, FAR)
    call_command("reposition", org=org.slug)
    assert "skipped (repositioning is off" in capsys.readouterr().out
    turn_on(org)
    call_command("reposition", org=org.slug)
    out = capsys.readouterr().out.splitlines()
    assert "1 idle drivers, 1 suggestions" in out[0]
    assert out[1].startswith("  Courier 2 -> ") and "orders are expected near this spot" in out[1]
    with pytest.raises(CommandError, match="--org"):
        call_command("reposition", org="nowhere")
