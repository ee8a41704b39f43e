"""Settlement fixtures: a courier with a phone, tariffs, and an order carried to the door."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from core.actors import Actor
from dispatch.models import Order, OrderStatus, OrderTransition
from dispatch.services.offers import accept_offer
from dispatch.services.orders import create_order, transition_order
from fleet.models import Driver
from fleet.services import set_driver_online
from identity.models import Role, User
from identity.services import create_client, issue_device_token
from payouts.services.rules import publish_earning_rule, publish_price_list
from tests.api.conftest import device_client, offer_to, png_file
from tests.conftest import make_active_driver, make_user, order_payload, post
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test")
TARIFFS_FROM = datetime(2020, 1, 1, tzinfo=UTC)
DROPOFF = {"lat": 60.1655, "lon": 24.9380}


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    cache.clear()
    settings.BACKGROUND_JOBS = "in-process"
    yield
    cache.clear()


@dataclass
class Courier:
    user: User
    driver: Driver
    app: object  # APIClient signed in with the phone's device token


def make_courier(org, tag="c1", phone="+358401000801") -> Courier:
    user = make_user(org, Role.DRIVER, f"courier-{tag}")
    driver = make_active_driver(org, name=f"Courier {tag}", phone=phone, plate=f"{tag.upper()}-1", user=user)
    driver = set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=Actor.for_user(user))
    return Courier(user, driver, device_client(issue_device_token(user=user, name="Phone")))


@pytest.fixture
def courier(org) -> Courier:
    return make_courier(org)


@pytest.fixture
def shop(org):
    return create_client(organisation=org, slug="shop", name="Shop Oy")


@pytest.fixture
def tariffs(org, shop):
    rule = publish_earning_rule(
        organisation=org,
        effective_from=TARIFFS_FROM,
        base_minor=250,
        per_km_minor=60,
        waiting_threshold_s=300,
        waiting_per_minute_minor=20,
        guaranteed_hourly_minor=1200,
    )
    price = publish_price_list(
        organisation=org, client=shop, effective_from=TARIFFS_FROM, base_minor=590, per_km_minor=90
    )
    return rule, price


def order_at_the_door(
    org, courier: Courier, ref="P-1", *, client=None, incentive_minor=0, waited_s=0, tip_minor=200
) -> Order:
    """An order offered (with an incentive), accepted and carried to the drop-off by the
    courier, having waited `waited_s` at the pickup after its window opened."""
    start = timezone.now() - timedelta(minutes=30)
    payload = order_payload(ref=ref, tip_minor=tip_minor, client_id=str(client.id) if client else None)
    payload["pickup"]["window"] = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=40)).isoformat(),
    }
    payload["dropoff"]["window"] = {
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }
    order = create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
    offer = offer_to(courier.driver, order, incentive_minor=incentive_minor)
    accept_offer(offer_id=offer.id, driver=courier.driver, actor=Actor.for_user(courier.user))
    for step in ("start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"):
        transition_order(
            order_id=order.id,
            organisation=org,
            action=step,
            actor=Actor.for_user(courier.user),
            held_by=courier.driver,
        )
    picked = OrderTransition.objects.get(order=order, to_status=OrderStatus.PICKED_UP).occurred_at
    OrderTransition.objects.filter(order=order, to_status=OrderStatus.ARRIVED_PICKUP).update(
        occurred_at=picked - timedelta(seconds=waited_s)
    )
    order.refresh_from_db()
    return order


def deliver_by_api(app, order, *, lat=DROPOFF["lat"], lon=DROPOFF["lon"], key=None):
    return app.post(
        f"/api/v1/driver/orders/{order.id}/deliver",
        {
            "photo": png_file(),
            "lat": str(lat),
            "lon": str(lon),
            "captured_at": (order.created_at + timedelta(minutes=5)).isoformat(),
            "recipient_name": "Maija",
        },
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key or f"pod-{order.id}-{timezone.now().timestamp()}",
    )


__all__ = ["post"]
