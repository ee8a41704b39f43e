"""Disputes checked against telemetry: within tolerance corrected at once (an adjustment paid in
the next cycle), otherwise queued for a person; every decision explained to the driver."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.actors import Actor
from dispatch.models import Order, OrderStatus, OrderTransition
from fleet.models import LocationPing
from payouts.models import Dispute, DisputeStatus, Earning
from payouts.services.disputes import decide_dispute
from payouts.services.payouts import owed_minor
from tests.api.conftest import error_of
from tests.conftest import post
from tests.payouts.conftest import deliver_by_api, make_courier, order_at_the_door


@pytest.fixture
def delivered(org, courier, tariffs):
    order = order_at_the_door(org, courier)
    deliver_by_api(courier.app, order)
    return Earning.objects.get(order=order)


def ping(driver, lat, lon, at):
    LocationPing.objects.create(
        driver=driver, location=f"SRID=4326;POINT({lon} {lat})", recorded_at=at, accuracy_m=5
    )


def moment(order, status):
    return OrderTransition.objects.get(order=order, to_status=status).occurred_at


def test_a_missing_tip_is_corrected_at_once_and_explained(courier, delivered):
    # The OMS reported a larger tip after the delivery (the order's record is the reference).
    Order.objects.filter(id=delivered.order_id).update(tip_minor=500)
    before = owed_minor(courier.driver, "EUR")
    response = post(
        courier.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "missing_tip"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "AUTO_CORRECTED"
    assert body["check_inputs"] == {"order_tip_minor": 500, "paid_tip_minor": 200}
    assert "the missing 3.00 EUR is added" in body["check_reason"]
    assert owed_minor(courier.driver, "EUR") == before + 300
    again = post(
        courier.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "missing_tip"}
    )
    assert again.status_code == 400 and "kind" in error_of(again)["fields"]
    assert owed_minor(courier.driver, "EUR") == before + 300


def test_a_tip_paid_in_full_goes_to_a_person_who_decides_with_a_reason(courier, delivered, staff_client):
    before = owed_minor(courier.driver, "EUR")
    body = post(
        courier.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "missing_tip"}
    ).json()
    assert body["status"] == "NEEDS_REVIEW" and "was paid in full" in body["check_reason"]
    assert owed_minor(courier.driver, "EUR") == before
    page = staff_client.get(reverse("admin:payouts_dispute_decide", args=[body["id"]]))
    assert page.status_code == 200 and b"was paid in full" in page.content
    decided = staff_client.post(
        reverse("admin:payouts_dispute_decide", args=[body["id"]]),
        {"amount_minor": "150", "reason": "The customer confirmed a cash tip we owe you."},
    )
    assert decided.status_code == 302
    listed = courier.app.get("/api/v1/driver/disputes").json()
    assert listed[0]["status"] == "CORRECTED" and listed[0]["decision_reason"].startswith(
        "The customer confirmed"
    )
    assert owed_minor(courier.driver, "EUR") == before + 150
    with pytest.raises(ValidationError, match="Already decided"):
        decide_dispute(
            dispute_id=body["id"],
            organisation_id=delivered.organisation_id,
            amount_minor=0,
            reason="x",
            actor=Actor.system("t"),
        )


def test_a_longer_distance_backed_by_the_gps_track_is_paid(courier, delivered):
    order = delivered.order
    start, end = moment(order, OrderStatus.PICKED_UP), moment(order, OrderStatus.DELIVERED)
    # A detour east and back: about 2.1 km of track.
    track = [(60.1690, 24.9410), (60.1690, 24.9600), (60.1655, 24.9600), (60.1655, 24.9380)]
    step = (end - start) / (len(track) + 1)
    for index, (lat, lon) in enumerate(track, start=1):
        ping(courier.driver, lat, lon, start + step * index)
    before = owed_minor(courier.driver, "EUR")
    body = post(
        courier.app,
        "/api/v1/driver/disputes",
        {"earning_id": str(delivered.id), "kind": "wrong_distance", "claimed_distance_m": 2_500},
    ).json()
    tracked = body["check_inputs"]["gps_track_m"]
    assert abs(tracked - 2_500) <= 250 and body["status"] == "AUTO_CORRECTED", body
    extra = min(tracked, 2_500) - delivered.distance_m
    assert owed_minor(courier.driver, "EUR") == before + (60 * extra + 500) // 1000
    assert "confirms your claim" in body["check_reason"]


def test_a_distance_claim_the_track_does_not_support_is_queued(courier, delivered):
    body = post(
        courier.app,
        "/api/v1/driver/disputes",
        {"earning_id": str(delivered.id), "kind": "wrong_distance", "claimed_distance_m": 9_000},
    ).json()
    assert body["status"] == "NEEDS_REVIEW" and "no GPS track" in body["check_reason"]
    missing = post(
        courier.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "wrong_distance"}
    )
    assert missing.status_code == 400


def test_waiting_shown_by_pings_at_the_pickup_is_paid(courier, delivered):
    order = delivered.order
    picked = moment(order, OrderStatus.PICKED_UP)
    for minutes in (12, 8, 4, 1):  # at the pickup for 12 minutes before picking up
        ping(courier.driver, 60.16902, 24.94101, picked - timedelta(minutes=minutes))
    ping(courier.driver, 60.1750, 24.9500, picked - timedelta(minutes=20))  # before: elsewhere
    before = owed_minor(courier.driver, "EUR")
    body = post(
        courier.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "unpaid_waiting"}
    ).json()
    assert body["status"] == "AUTO_CORRECTED", body
    assert body["check_inputs"]["gps_waiting_s"] == 12 * 60
    assert owed_minor(courier.driver, "EUR") == before + 7 * 20  # 7 min past the 5-minute threshold


def test_another_drivers_earning_cannot_be_disputed(org, courier, delivered):
    other = make_courier(org, "c9", "+358401000809")
    refused = post(
        other.app, "/api/v1/driver/disputes", {"earning_id": str(delivered.id), "kind": "missing_tip"}
    )
    assert refused.status_code == 400 and "earning_id" in error_of(refused)["fields"]
    assert not Dispute.objects.exists()
    assert other.app.get("/api/v1/driver/earnings").json() == []
    assert DisputeStatus.NEEDS_REVIEW not in Dispute.objects.values_list("status", flat=True)
