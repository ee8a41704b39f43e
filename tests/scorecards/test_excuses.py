"""Each cause of lateness the driver did not make is found from the rows the system keeps,
with its evidence; lateness with none of them counts against the driver."""

from datetime import timedelta

import h3
import pytest
import time_machine
from django.db import transaction

from core.actors import Actor
from core.events import record_event
from dispatch.engine.roads import TRAFFIC_H3_RES
from dispatch.models import GeofenceVisit
from dispatch.services.traffic import ingest_traffic
from scorecards.models import DeliveryOutcome, ExcuseCause, Scorecard
from tests.scorecards.conftest import DAY, PROMISED_BY, carry, new_order

LATE = PROMISED_BY + timedelta(minutes=10)


@pytest.fixture(autouse=True)
def straight_line_travel(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"


def outcome_of(order) -> DeliveryOutcome:
    return DeliveryOutcome.objects.get(order=order)


def test_lateness_with_no_cause_counts_against_the_driver(org, driver):
    order = carry(new_order(org), org, driver, delivered_at=LATE)
    outcome = outcome_of(order)
    assert outcome.excused_cause == "" and outcome.counts_as_late
    checks = outcome.excuse_inputs["checks"]
    assert not any(check["held"] for check in checks.values())
    assert checks["LATE_PICKUP_WINDOW"]["earliest_possible_arrival"] < PROMISED_BY.isoformat()
    card = Scorecard.objects.get(driver=driver)
    assert card.sums["30d"]["deliveries_late"] == 1 and card.sums["30d"]["deliveries_late_excused"] == 0


def test_waiting_at_the_pickup_past_its_ready_time_is_food_not_ready(org, driver):
    order = new_order(org)
    # The driver came at 12:00 (the pickup window opens) and left at 12:45, by the geofence.
    GeofenceVisit.objects.create(
        organisation=org,
        driver=driver,
        order=order,
        kind="pickup",
        radius_m=50,
        exit_radius_m=80,
        phase="LEFT",
        entered_at=DAY.replace(hour=12),
        exited_at=DAY.replace(hour=12, minute=45),
    )
    carry(order, org, driver, delivered_at=LATE)
    outcome = outcome_of(order)
    assert outcome.excused_cause == ExcuseCause.FOOD_NOT_READY
    check = outcome.excuse_inputs["checks"]["FOOD_NOT_READY"]
    assert check["waited_past_ready_s"] == 45 * 60 - 300 and check["late_s"] == 600
    card = Scorecard.objects.get(driver=driver)
    assert card.sums["30d"]["deliveries_late_excused"] == 1
    assert card.last_n["late_excused"] == 1 and card.last_n["on_time_rate"] is None


def test_a_short_wait_does_not_excuse_a_longer_lateness(org, driver):
    order = new_order(org)
    GeofenceVisit.objects.create(
        organisation=org,
        driver=driver,
        order=order,
        kind="pickup",
        radius_m=50,
        exit_radius_m=80,
        phase="LEFT",
        entered_at=DAY.replace(hour=12),
        exited_at=DAY.replace(hour=12, minute=8),  # 3 minutes past a normal handover
    )
    carry(order, org, driver, delivered_at=LATE)
    outcome = outcome_of(order)
    assert outcome.excused_cause == ""
    assert outcome.excuse_inputs["checks"]["FOOD_NOT_READY"]["waited_past_ready_s"] == 180


def test_an_incident_on_the_way_is_a_traffic_incident(org, driver):
    order = new_order(org)
    on_the_way = h3.latlng_to_cell(60.1672, 24.9395, TRAFFIC_H3_RES)  # between pickup and drop-off
    ingest_traffic(
        organisation=org,
        source="city-feed",
        records=[
            {
                "id": "crash-1",
                "type": "incident",
                "h3_cell": on_the_way,
                "factor": 0.1,
                "valid_from": DAY.replace(hour=12, minute=30).isoformat(),
                "valid_until": DAY.replace(hour=14).isoformat(),
                "description": "Collision",
            }
        ],
        actor=Actor.system("test"),
    )
    carry(order, org, driver, delivered_at=LATE)
    outcome = outcome_of(order)
    assert outcome.excused_cause == ExcuseCause.TRAFFIC_INCIDENT
    [incident] = outcome.excuse_inputs["checks"]["TRAFFIC_INCIDENT"]["incidents"]
    assert incident["h3_cell"] == on_the_way and incident["description"] == "Collision"


def test_an_incident_elsewhere_or_before_the_trip_excuses_nothing(org, driver):
    order = new_order(org)
    far = h3.latlng_to_cell(60.25, 25.10, TRAFFIC_H3_RES)
    near = h3.latlng_to_cell(60.1672, 24.9395, TRAFFIC_H3_RES)
    ingest_traffic(
        organisation=org,
        source="city-feed",
        records=[
            {
                "id": "far",
                "type": "incident",
                "h3_cell": far,
                "factor": 0.1,
                "valid_from": DAY.replace(hour=12).isoformat(),
                "valid_until": DAY.replace(hour=14).isoformat(),
            },
            {
                "id": "over-before",
                "type": "incident",
                "h3_cell": near,
                "factor": 0.1,
                "valid_from": DAY.replace(hour=9).isoformat(),
                "valid_until": DAY.replace(hour=11).isoformat(),
            },
        ],
        actor=Actor.system("test"),
    )
    carry(order, org, driver, delivered_at=LATE)
    assert outcome_of(order).excused_cause == ""


def test_a_stop_the_system_moved_later_is_route_resequenced(org, driver):
    order = new_order(org)
    # After the acceptance (11:30), the system moved the order's drop-off later (as
    # dispatch.services.routes records a re-sequencing).
    with time_machine.travel(DAY.replace(hour=11, minute=45), tick=False), transaction.atomic():
        record_event(
            organisation=org,
            event_type="route.resequenced",
            subject_type="driver",
            subject_id=driver.id,
            actor=Actor.system("sla-watch"),
            reason="the ETAs drifted; the stops were re-sequenced",
            payload={
                "driver_id": str(driver.id),
                "route_id": "r",
                "moved": [
                    {
                        "order_id": str(order.id),
                        "stop": "dropoff",
                        "from_position": 1,
                        "to_position": 3,
                        "eta_before": DAY.replace(hour=13).isoformat(),
                        "eta_after": DAY.replace(hour=13, minute=40).isoformat(),
                    }
                ],
            },
        )
    carry(order, org, driver, delivered_at=LATE)
    outcome = outcome_of(order)
    assert outcome.excused_cause == ExcuseCause.ROUTE_RESEQUENCED
    [moved] = outcome.excuse_inputs["checks"]["ROUTE_RESEQUENCED"]["resequences"]
    assert (moved["from_position"], moved["to_position"]) == (1, 3)


def test_assigned_too_late_to_make_the_promise_is_a_late_pickup_window(org, driver):
    order = new_order(org)
    carry(order, org, driver, delivered_at=LATE, assigned_at=PROMISED_BY - timedelta(seconds=20))
    outcome = outcome_of(order)
    assert outcome.excused_cause == ExcuseCause.LATE_PICKUP_WINDOW
    check = outcome.excuse_inputs["checks"]["LATE_PICKUP_WINDOW"]
    assert check["earliest_possible_arrival"] > PROMISED_BY.isoformat() and check["travel_s"] > 20
