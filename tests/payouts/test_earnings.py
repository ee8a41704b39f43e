"""A proof of delivery posts the driver's earning at once (and the client's charge); nothing is
posted twice; the geofence refuses a proof away from the door; overrides post or reverse."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from core.actors import Actor
from core.models import DomainEvent
from dispatch.models import OrderStatus, ProofOfDelivery
from dispatch.services.orders import force_order_status
from dispatch.travel import travel_times
from fleet.models import Vehicle
from payouts.audit import audit
from payouts.models import Account, AccountKind, Earning, EarningRule
from payouts.services.earnings import post_delivery_earning, rule_for
from payouts.services.ledger import balance_minor
from payouts.services.payouts import owed_minor
from payouts.services.rules import publish_earning_rule
from tests.api.conftest import error_of
from tests.payouts.conftest import TARIFFS_FROM, deliver_by_api, make_courier, order_at_the_door


def routed_m(order) -> int:
    """Pickup to drop-off on the roads for the courier's vehicle (their route holds just this order)."""
    vehicle = Vehicle.objects.get(driver_id=order.driver_id, is_active=True).type
    pickup = (order.pickup_location.y, order.pickup_location.x)
    dropoff = (order.dropoff_location.y, order.dropoff_location.x)
    metres = (
        travel_times(organisation_id=order.organisation_id).matrix([pickup], [dropoff], None, vehicle).metres
    )
    return round(float(metres[0, 0]))


def test_a_proof_of_delivery_posts_the_earning_with_its_breakdown_at_once(org, courier, shop, tariffs):
    order = order_at_the_door(org, courier, client=shop, incentive_minor=150, waited_s=11 * 60)
    response = deliver_by_api(courier.app, order)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "DELIVERED"
    earning = body["earning"]
    metres = routed_m(order)
    lines = {line["code"]: line["amount_minor"] for line in earning["breakdown"]["lines"]}
    assert lines == {
        "base": 250,
        "distance": (60 * metres + 500) // 1000,
        "waiting": 120,  # 6 minutes past the 5-minute threshold at 0.20
        "auction": 150,
        "tip": 200,
    }
    assert earning["total_minor"] == sum(lines.values())
    assert earning["distance_source"] == "route" and earning["distance_m"] == metres
    assert any("along your planned route" in line["text"] for line in earning["breakdown"]["lines"])
    # The ledger: owed to the driver, charged to the client (price list + the tip), balanced.
    assert owed_minor(courier.driver, "EUR") == earning["total_minor"]
    receivable = Account.objects.get(kind=AccountKind.CLIENT_RECEIVABLE, client=shop)
    assert balance_minor(receivable) == 590 + (90 * metres + 500) // 1000 + 200
    report = audit()
    assert report["unbalanced"] == [] and report["payable_total"] == earning["total_minor"]
    assert DomainEvent.objects.filter(event_type="earning.posted", subject_id=earning["id"]).exists()
    # The driver sees it in their earnings and balance too.
    listed = courier.app.get("/api/v1/driver/earnings").json()
    assert [e["id"] for e in listed] == [earning["id"]]
    assert courier.app.get("/api/v1/driver/balance").json()["balance_minor"] == earning["total_minor"]
    assert courier.app.get(f"/api/v1/driver/orders/{order.id}").json()["earning"]["id"] == earning["id"]


def test_a_retried_or_repeated_proof_posts_nothing_twice(org, courier, tariffs):
    order = order_at_the_door(org, courier)
    first = deliver_by_api(courier.app, order, key="pod-once")
    replay = deliver_by_api(courier.app, order, key="pod-once")
    assert first.status_code == replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    again = deliver_by_api(courier.app, order, key="pod-twice")
    assert again.status_code in (400, 409)
    post_delivery_earning(order_id=order.id, actor=Actor.system("test"))
    assert Earning.objects.filter(order=order).count() == 1
    assert ProofOfDelivery.objects.filter(order=order).count() == 1
    assert owed_minor(courier.driver, "EUR") == Earning.objects.get(order=order).total_minor


def test_a_proof_away_from_the_door_is_refused_and_nothing_is_posted(org, courier, tariffs):
    order = order_at_the_door(org, courier)
    refused = deliver_by_api(courier.app, order, lat=60.1665, lon=24.9380)  # ~110 m north
    assert refused.status_code == 400
    error = error_of(refused)
    assert "location" in error["fields"] and "within 50 m" in error["fields"]["location"][0]
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_DROPOFF
    assert not Earning.objects.exists() and not ProofOfDelivery.objects.exists()
    assert audit()["transactions"] == 0


def test_a_proof_for_someone_elses_order_is_refused(org, courier, tariffs):
    other = make_courier(org, "c2", "+358401000802")
    theirs = order_at_the_door(org, other, ref="THEIRS")
    refused = deliver_by_api(courier.app, theirs)
    assert refused.status_code == 404
    assert not Earning.objects.exists()


def test_overrides_reverse_and_post_earnings_with_their_reason(org, courier, tariffs, staff_user):
    order = order_at_the_door(org, courier)
    deliver_by_api(courier.app, order)
    first = Earning.objects.get(order=order)
    actor = Actor.for_user(staff_user)
    force_order_status(
        order_id=order.id,
        organisation=org,
        to_status="ARRIVED_DROPOFF",
        actor=actor,
        reason="Parcel found in the van",
    )
    first.refresh_from_db()
    assert first.reversed_at is not None and "Parcel found in the van" in first.reversed_reason
    assert owed_minor(courier.driver, "EUR") == 0
    force_order_status(
        order_id=order.id, organisation=org, to_status="DELIVERED", actor=actor, reason="Customer confirmed"
    )
    second = Earning.objects.get(order=order, reversed_at__isnull=True)
    assert second.id != first.id and second.total_minor == first.total_minor
    assert owed_minor(courier.driver, "EUR") == second.total_minor
    descriptions = list(
        second.transaction.__class__.objects.filter(order=order).values_list("description", flat=True)
    )
    assert any("Customer confirmed" in text for text in descriptions)
    assert any(text.startswith("Reversed: ") and "Parcel found" in text for text in descriptions)
    assert audit()["unbalanced"] == []


def test_rules_are_versioned_and_the_most_specific_wins(org, tariffs):
    default, _price = tariffs
    later = TARIFFS_FROM + timedelta(days=365)
    newer = publish_earning_rule(organisation=org, effective_from=later, base_minor=300, per_km_minor=70)
    default.refresh_from_db()
    assert default.effective_to == later
    bikes = publish_earning_rule(
        organisation=org, effective_from=later, vehicle_type="bicycle", base_minor=200
    )
    assert (
        rule_for(
            organisation_id=org.id,
            zone_id=None,
            vehicle_type="car",
            currency="EUR",
            at=later - timedelta(seconds=1),
        )
        == default
    )
    assert (
        rule_for(organisation_id=org.id, zone_id=None, vehicle_type="car", currency="EUR", at=later) == newer
    )
    assert (
        rule_for(organisation_id=org.id, zone_id=None, vehicle_type="bicycle", currency="EUR", at=later)
        == bikes
    )
    with pytest.raises(ValidationError) as caught:
        publish_earning_rule(organisation=org, effective_from=TARIFFS_FROM, base_minor=1)
    assert "effective_from" in caught.value.message_dict
    for bad, field in (
        ({"base_minor": -1}, "base_minor"),
        ({"per_km_minor": 1.5}, "per_km_minor"),
        ({"surge": [{}]}, "surge"),
    ):
        with pytest.raises(ValidationError) as caught:
            publish_earning_rule(organisation=org, effective_from=later + timedelta(days=1), **bad)
        assert field in caught.value.message_dict
    assert EarningRule.objects.count() == 3


def test_the_client_sees_the_proof_with_a_signed_expiring_link(org, courier, shop, tariffs, settings):
    from rest_framework.test import APIClient

    from identity.services import create_api_key
    from tests.api.conftest import client_for

    order = order_at_the_door(org, courier, client=shop)
    deliver_by_api(courier.app, order)
    shop_key = client_for(create_api_key(organisation=org, name="shop", client=shop))
    proof = shop_key.get(f"/api/v1/orders/{order.id}").json()["proof_of_delivery"]
    assert proof["recipient_name"] == "Maija" and set(proof["images"]) == {"photo"}
    link = proof["images"]["photo"]
    path = link.removeprefix(settings.PUBLIC_BASE_URL)
    anonymous = APIClient()
    image = anonymous.get(path)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert anonymous.get(path.replace("/photo?", "/signature?")).status_code == 302  # one image per link
    assert anonymous.get(path[:-3] + "xyz").status_code == 302  # tampered
    webhook = DomainEvent.objects.get(event_type="order.delivered", subject_id=str(order.id))
    assert webhook.client_id == shop.id
    assert webhook.payload["proof_of_delivery"]["images"]["photo"].startswith(settings.PUBLIC_BASE_URL)
    settings.POD_LINK_TTL_SECONDS = -1
    assert anonymous.get(path).status_code == 302  # expired: sign in instead


def test_an_accepted_reposition_suggestion_is_paid_with_the_next_order_once(org, courier, tariffs):
    from dispatch.services.repositioning import answer_suggestion
    from tests.dispatch.factories import suggest_to

    suggestion = suggest_to(courier.driver, incentive_minor=150)
    answer_suggestion(
        suggestion_id=suggestion.id,
        driver=courier.driver,
        action="accept",
        actor=Actor.for_user(courier.user),
    )
    first = order_at_the_door(org, courier, ref="AFTER-MOVE")
    lines = deliver_by_api(courier.app, first).json()["earning"]["breakdown"]["lines"]
    assert [line["amount_minor"] for line in lines if line["code"] == "repositioning"] == [150]
    second = order_at_the_door(org, courier, ref="LATER")
    lines = deliver_by_api(courier.app, second).json()["earning"]["breakdown"]["lines"]
    assert "repositioning" not in [line["code"] for line in lines]
