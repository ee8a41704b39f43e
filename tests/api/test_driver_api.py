"""The driver app end to end: go online, see an offer, accept it, move through pickup and
drop-off, deliver with a photo; answers on closed offers and others' work are clear."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from PIL import Image

from core.actors import Actor
from core.models import DomainEvent
from dispatch.models import Offer, OfferStatus, Order, OrderStatus, ProofOfDelivery
from dispatch.services.orders import create_order
from identity.models import Role
from identity.services import issue_device_token
from tests.api.conftest import device_client, error_of, offer_to
from tests.conftest import make_active_driver, make_user, order_payload, post
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test")


def new_order(org, ref, pickup_start=None, dropoff_end_minutes=90):
    payload = order_payload(ref=ref)
    if pickup_start is not None:
        payload["pickup"]["window"] = {
            "start": pickup_start.isoformat(),
            "end": (pickup_start + timedelta(minutes=30)).isoformat(),
        }
        payload["dropoff"]["window"] = {
            "start": (pickup_start + timedelta(minutes=15)).isoformat(),
            "end": (pickup_start + timedelta(minutes=dropoff_end_minutes)).isoformat(),
        }
    return create_order(organisation=org, actor=SYSTEM, data=order_input(payload))


def courier(org, name="Courier", phone="+358401000701", username="courier"):
    user = make_user(org, Role.DRIVER, username)
    driver = make_active_driver(org, name=name, phone=phone, plate=f"{username[:3].upper()}-1", user=user)
    return driver, device_client(issue_device_token(user=user, name="Phone"))


def png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "door.png"
    return buffer


def test_a_driver_goes_online_takes_an_offer_and_delivers(org):
    driver, app = courier(org)
    me = app.get("/api/v1/driver/me").json()
    assert (me["id"], me["status"], me["is_online"]) == (str(driver.id), "ACTIVE", False)
    online = post(app, "/api/v1/driver/online", {})
    assert online.status_code == 200 and online.json()["is_online"] is True
    order = new_order(org, "E2E-1")
    offer_to(driver, order, incentive_minor=350)

    offers = app.get("/api/v1/driver/offers").json()
    assert [(o["status"], o["incentive_minor"], o["currency"]) for o in offers] == [("PENDING", 350, "EUR")]
    offered = offers[0]["orders"][0]
    assert offered["external_ref"] == "E2E-1"
    assert offered["pickup"]["window"]["start"] == "2030-01-01T12:00:00+00:00"
    assert {"lat", "lon", "address"} <= set(offered["dropoff"])
    assert "recipient" not in offered  # who it is for shows once it is theirs

    accepted = post(app, f"/api/v1/driver/offers/{offers[0]['id']}/accept", {})
    assert accepted.status_code == 200 and accepted.json()["status"] == "ACCEPTED"
    current = app.get("/api/v1/driver/orders").json()
    assert [(o["id"], o["status"]) for o in current] == [(str(order.id), "ASSIGNED")]
    assert current[0]["recipient"]["phone"] == "+358401234567"

    for step, status in (
        ("start_pickup", "EN_ROUTE_PICKUP"),
        ("arrive_pickup", "ARRIVED_PICKUP"),
        ("pick_up", "PICKED_UP"),
        ("arrive_dropoff", "ARRIVED_DROPOFF"),
    ):
        response = post(app, f"/api/v1/driver/orders/{order.id}/{step}", {})
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
    delivered = app.post(
        f"/api/v1/driver/orders/{order.id}/deliver",
        {
            "photo": png(),
            "lat": "60.1655",
            "lon": "24.9380",
            "captured_at": "2030-01-01T12:40:00Z",
            "recipient_name": "Maija",
        },
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="deliver-1",
    )
    assert delivered.status_code == 200, delivered.content
    body = delivered.json()
    assert body["status"] == "DELIVERED"
    assert [h["action"] for h in body["history"]][-1] == "deliver"
    assert body["history"][-1]["actor"] == {"type": "driver", "label": "courier"}
    proof = ProofOfDelivery.objects.get(order=order)
    assert proof.driver == driver and proof.photo
    assert app.get("/api/v1/driver/orders").json() == []
    assert app.get(f"/api/v1/driver/orders/{order.id}").json()["status"] == "DELIVERED"
    offline = post(app, "/api/v1/driver/offline", {})
    assert offline.json()["is_online"] is False
    kinds = set(DomainEvent.objects.filter(organisation=org).values_list("event_type", flat=True))
    assert {"driver.online", "offer.created", "offer.accepted", "order.assigned", "order.delivered"} <= kinds


def test_a_proof_needs_a_photo_or_signature_and_a_place(org):
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    order = new_order(org, "POD-1")
    offer = offer_to(driver, order)
    post(app, f"/api/v1/driver/offers/{offer.id}/accept", {})
    for step in ("start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"):
        post(app, f"/api/v1/driver/orders/{order.id}/{step}", {})
    for body, field in (
        ({"lat": "60.1", "lon": "24.9", "captured_at": "2030-01-01T12:40:00"}, "captured_at"),  # no offset
        ({"lat": "91", "lon": "24.9", "captured_at": "2030-01-01T12:40:00Z"}, "lat"),
        ({"lat": "60.1", "lon": "24.9", "captured_at": "2030-01-01T12:40:00Z"}, "photo"),  # no evidence
    ):
        refused = app.post(f"/api/v1/driver/orders/{order.id}/deliver", body, format="multipart")
        assert refused.status_code == 400
        assert field in error_of(refused)["fields"], body
    not_an_image = io.BytesIO(b"plain text")
    not_an_image.name = "x.png"
    refused = app.post(
        f"/api/v1/driver/orders/{order.id}/deliver",
        {"photo": not_an_image, "lat": "60.1", "lon": "24.9", "captured_at": "2030-01-01T12:40:00Z"},
        format="multipart",
    )
    assert refused.status_code == 400 and "photo" in error_of(refused)["fields"]
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_DROPOFF


def test_a_step_out_of_order_is_409_and_failing_needs_a_reason(org):
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    order = new_order(org, "STEP-1")
    post(app, f"/api/v1/driver/offers/{offer_to(driver, order).id}/accept", {})
    skipped = post(app, f"/api/v1/driver/orders/{order.id}/pick_up", {})
    assert skipped.status_code == 409
    assert error_of(skipped)["code"] == "invalid_transition"
    no_reason = post(app, f"/api/v1/driver/orders/{order.id}/fail", {})
    assert no_reason.status_code == 400 and "reason" in error_of(no_reason)["fields"]
    failed = post(app, f"/api/v1/driver/orders/{order.id}/fail", {"reason": "Shop closed."})
    assert failed.status_code == 200 and failed.json()["status"] == "FAILED"


def test_the_loser_of_an_offer_gets_409_and_nothing_changes(org):
    first, first_app = courier(org)
    second, second_app = courier(org, name="Second", phone="+358401000702", username="second")
    for app in (first_app, second_app):
        post(app, "/api/v1/driver/online", {})
    order = new_order(org, "RACE-1")
    first_offer, second_offer = offer_to(first, order), offer_to(second, order)
    assert post(first_app, f"/api/v1/driver/offers/{first_offer.id}/accept", {}).status_code == 200
    events = DomainEvent.objects.count()
    lost = post(second_app, f"/api/v1/driver/offers/{second_offer.id}/accept", {})
    assert lost.status_code == 409
    error = error_of(lost)
    assert "withdrawn" in error["message"] and "status" in error["fields"]
    assert DomainEvent.objects.count() == events
    order.refresh_from_db()
    assert order.driver_id == first.id
    shown = second_app.get(f"/api/v1/driver/offers/{second_offer.id}").json()
    assert (shown["status"], shown["reason"]) == ("WITHDRAWN", "Another driver accepted this work.")


def test_declining_and_answering_an_expired_offer(org):
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    declined = offer_to(driver, new_order(org, "D-1"))
    response = post(app, f"/api/v1/driver/offers/{declined.id}/decline", {"reason": "Too heavy."})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("DECLINED", "Too heavy.")
    unknown_field = post(app, f"/api/v1/driver/offers/{declined.id}/decline", {"why": "x"})
    assert unknown_field.status_code == 400 and "why" in error_of(unknown_field)["fields"]
    lapsed = offer_to(driver, new_order(org, "D-2"))
    now = timezone.now()
    Offer.objects.filter(id=lapsed.id).update(created_at=now - timedelta(minutes=9), expires_at=now)
    refused = post(app, f"/api/v1/driver/offers/{lapsed.id}/accept", {})
    assert refused.status_code == 409
    assert "expired" in error_of(refused)["message"]
    assert Offer.objects.get(id=lapsed.id).status == OfferStatus.PENDING
    assert Order.objects.get(external_ref="D-2").status == OrderStatus.OFFERED


def test_an_accept_retried_with_its_key_is_answered_once(org):
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    offer = offer_to(driver, new_order(org, "IDEM-1"))
    first = post(app, f"/api/v1/driver/offers/{offer.id}/accept", {}, key="accept-once")
    again = post(app, f"/api/v1/driver/offers/{offer.id}/accept", {}, key="accept-once")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert DomainEvent.objects.filter(event_type="offer.accepted").count() == 1


def test_current_orders_come_by_their_next_stop(org):
    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    base = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    late_pickup = new_order(org, "LATE-PICKUP", pickup_start=base + timedelta(hours=3))
    early_pickup = new_order(org, "EARLY-PICKUP", pickup_start=base + timedelta(hours=1))
    carried = new_order(org, "CARRIED", pickup_start=base, dropoff_end_minutes=150)  # drop-off by 14:30
    for order in (late_pickup, early_pickup, carried):
        post(app, f"/api/v1/driver/offers/{offer_to(driver, order).id}/accept", {})
    for step in ("start_pickup", "arrive_pickup", "pick_up"):
        post(app, f"/api/v1/driver/orders/{carried.id}/{step}", {})
    refs = [o["external_ref"] for o in app.get("/api/v1/driver/orders").json()]
    # Next stops: pickup 13:00, drop-off by 14:30, pickup 15:00.
    assert refs == ["EARLY-PICKUP", "CARRIED", "LATE-PICKUP"]


def test_an_order_taken_from_the_driver_cannot_be_moved_by_them(org):
    from dispatch.services.orders import transition_order

    driver, app = courier(org)
    post(app, "/api/v1/driver/online", {})
    order = new_order(org, "TAKEN")
    post(app, f"/api/v1/driver/offers/{offer_to(driver, order).id}/accept", {})
    transition_order(
        order_id=order.id, organisation=org, action="release", actor=SYSTEM, reason="Reassigned."
    )
    assert post(app, f"/api/v1/driver/orders/{order.id}/start_pickup", {}).status_code == 404


@pytest.mark.parametrize("status_action", ["suspend"])
def test_a_suspended_driver_cannot_go_online(org, status_action):
    from fleet.services import change_driver_status

    driver, app = courier(org)
    change_driver_status(
        driver_id=driver.id, organisation=org, action=status_action, actor=SYSTEM, reason="Checks."
    )
    refused = post(app, "/api/v1/driver/online", {})
    assert refused.status_code == 400 and "is_online" in error_of(refused)["fields"]
