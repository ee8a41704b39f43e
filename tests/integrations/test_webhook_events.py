"""Every order transition and driver status change becomes an event and its deliveries."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.actors import Actor
from core.geo import make_point
from core.models import DomainEvent
from dispatch.models import Order
from dispatch.services.orders import deliver_order, transition_order
from fleet import services as fleet_services
from integrations.models import WebhookDelivery
from integrations.tasks import send_due_webhooks
from integrations.webhooks.signing import SIGNATURE_HEADER, verify
from tests.conftest import make_active_driver, order_payload, post
from tests.integrations.conftest import subscribe

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def png_file(name="signature.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_an_order_created_over_the_api_is_posted_signed_to_the_subscriber(api, org, receiver):
    subscription = subscribe(org, receiver, ["order.*"])

    response = post(api, "/api/v1/orders", order_payload("ORD-HOOK"))
    assert response.status_code == 201, response.json()

    delivery = WebhookDelivery.objects.get()
    assert delivery.subscription == subscription
    assert delivery.event.event_type == "order.created"
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert receiver.requests == []  # nothing is sent inside the request

    assert send_due_webhooks() == 1
    [request] = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/hooks/fleetroot"
    assert request.signature_valid is True
    assert verify(subscription.secret, request.body, request.header(SIGNATURE_HEADER))
    assert not verify("whsec_someone-else", request.body, request.header(SIGNATURE_HEADER))
    assert request.header("Content-Type") == "application/json"
    assert request.header("Fleetroot-Event-Id") == str(delivery.event_id)
    assert request.header("Fleetroot-Event-Type") == "order.created"
    assert request.header("Fleetroot-Delivery-Id") == str(delivery.id)
    assert request.header("Fleetroot-Attempt") == "1"
    assert request.header("Fleetroot-Event-Sequence") == str(delivery.event.sequence)

    body = json.loads(request.body)
    assert body["id"] == str(delivery.event_id)
    assert body["sequence"] == delivery.event.sequence
    assert body["type"] == "order.created"
    assert body["organisation"] == "acme"
    assert body["data"]["order_id"] == response.json()["id"]
    assert body["data"]["external_ref"] == "ORD-HOOK"
    assert body["data"]["status"] == "CREATED"
    assert body["actor"] == {"type": "api_key", "label": "oms"}

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.last_response_status == 200
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert send_due_webhooks() == 0
    assert len(receiver.requests) == 1


@pytest.fixture
def subscriptions(org, other_org, receiver):
    """One subscription per kind of filter, and two that must never get this org's events."""
    orders = subscribe(org, receiver, ["order.*"], description="orders")
    drivers = subscribe(org, receiver, ["driver.*"], description="drivers")
    everything = subscribe(org, receiver, ["*"], description="all")
    delivered = subscribe(org, receiver, ["order.delivered", "order.cancelled"], description="exact")
    inactive = subscribe(org, receiver, ["*"], description="inactive")
    inactive.is_active = False
    inactive.save()
    foreign = subscribe(other_org, receiver, ["*"], description="other organisation")
    return {
        "orders": orders,
        "drivers": drivers,
        "all": everything,
        "exact": delivered,
        "inactive": inactive,
        "foreign": foreign,
    }


def expected_subscribers(event_type: str) -> set[str]:
    names = {"all", "orders" if event_type.startswith("order.") else "drivers"}
    if event_type in ("order.delivered", "order.cancelled"):
        names.add("exact")
    return names


class EventWatcher:
    """Checks that one step records exactly one event, fanned out to the right subscriptions."""

    def __init__(self, subscriptions):
        self.by_id = {sub.id: name for name, sub in subscriptions.items()}
        self.seen_events: set = set(DomainEvent.objects.values_list("id", flat=True))

    def step(self, expected_type: str, run, also: tuple[str, ...] = ()) -> DomainEvent:
        """`also`: events another domain records in the same step (settlement's earning)."""
        run()
        new = DomainEvent.objects.exclude(id__in=self.seen_events).order_by("sequence")
        assert [e.event_type for e in new] == [expected_type, *also]
        event = new.get(event_type=expected_type)
        self.seen_events.update(e.id for e in new)
        got = {self.by_id[d.subscription_id] for d in WebhookDelivery.objects.filter(event=event)}
        assert got == expected_subscribers(expected_type), expected_type
        return event


def create_order(api, ref):
    response = post(api, "/api/v1/orders", order_payload(ref))
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_every_order_transition_emits_its_event_to_matching_subscriptions(api, org, subscriptions):
    driver = make_active_driver(org)
    watch = EventWatcher(subscriptions)

    def move(order_id, action, **kwargs):
        return lambda: transition_order(
            order_id=order_id, organisation=org, action=action, actor=SYSTEM, **kwargs
        )

    created = watch.step("order.created", lambda: create_order(api, "ORD-A"))
    order_id = created.subject_id
    assert created.payload["status"] == "CREATED"
    steps = [
        ("offer", "order.offered", {}),
        ("release", "order.released", {"reason": "Offer lapsed."}),
        ("assign", "order.assigned", {"driver": driver}),
        ("start_pickup", "order.en_route_pickup", {}),
        ("arrive_pickup", "order.arrived_pickup", {}),
        ("pick_up", "order.picked_up", {}),
        ("arrive_dropoff", "order.arrived_dropoff", {}),
    ]
    for action, event_type, kwargs in steps:
        event = watch.step(event_type, move(order_id, action, **kwargs))
        assert event.payload["action"] == action
        assert event.payload["order_id"] == order_id
    delivered = watch.step(
        "order.delivered",
        lambda: deliver_order(
            order_id=order_id,
            organisation=org,
            driver=driver,
            actor=SYSTEM,
            location=make_point(lat=60.1655, lon=24.938),
            captured_at=datetime.now(UTC),
            signature=png_file(),
        ),
        also=("earning.posted",),
    )
    assert delivered.payload["driver_id"] == str(driver.id)

    cancelled_id = watch.step("order.created", lambda: create_order(api, "ORD-B")).subject_id
    watch.step("order.cancelled", move(cancelled_id, "cancel", reason="Customer changed their mind."))

    failed_id = watch.step("order.created", lambda: create_order(api, "ORD-C")).subject_id
    for action, event_type, kwargs in [
        ("assign", "order.assigned", {"driver": driver}),
        ("start_pickup", "order.en_route_pickup", {}),
        ("arrive_pickup", "order.arrived_pickup", {}),
        ("pick_up", "order.picked_up", {}),
        ("fail", "order.failed", {"reason": "Nobody home."}),
        ("return_to_sender", "order.returned", {"reason": "Back to the shop."}),
    ]:
        watch.step(event_type, move(failed_id, action, **kwargs))
    assert Order.objects.get(id=failed_id).status == "RETURNED"

    # Every action of the state machine was exercised.
    from dispatch.services.orders import ACTIONS

    assert {a for a, *_ in steps} | {"deliver", "cancel", "fail", "return_to_sender"} == ACTIONS
    foreign, inactive = subscriptions["foreign"], subscriptions["inactive"]
    assert not WebhookDelivery.objects.filter(subscription__in=[foreign, inactive]).exists()


def test_every_driver_status_change_emits_its_event_to_matching_subscriptions(org, subscriptions):
    driver = fleet_services.create_driver(
        organisation=org,
        name="Dee",
        phone="+358401000009",
        fleet_type="gig",
        vehicle_type="bicycle",
        actor=SYSTEM,
    )
    applicant = fleet_services.create_driver(
        organisation=org,
        name="Ann",
        phone="+358401000010",
        fleet_type="gig",
        vehicle_type="bicycle",
        actor=SYSTEM,
    )

    watch = EventWatcher(subscriptions)

    def change(driver_id, action):
        return lambda: fleet_services.change_driver_status(
            driver_id=driver_id, organisation=org, action=action, actor=SYSTEM, reason=f"Test {action}."
        )

    for driver_id, action, status in [
        (applicant.id, "deny_access", "ACCESS_DENIED"),
        (driver.id, "approve", "ACTIVE"),
        (driver.id, "suspend", "SUSPENDED"),
        (driver.id, "reinstate", "ACTIVE"),
        (driver.id, "offboard", "OFFBOARDED"),
    ]:
        event = watch.step("driver.status_changed", change(driver_id, action))
        assert event.payload["driver_id"] == str(driver_id)
        assert event.payload["status"] == status
        assert event.reason == f"Test {action}."

    other = make_active_driver(org, name="Otto", phone="+358401000011")
    watch.seen_events.update(DomainEvent.objects.values_list("id", flat=True))  # its approval
    for online, event_type in [(True, "driver.online"), (False, "driver.offline")]:
        watch.step(
            event_type,
            lambda online=online: fleet_services.set_driver_online(
                driver_id=other.id, organisation=org, online=online, actor=SYSTEM
            ),
        )
    foreign, inactive = subscriptions["foreign"], subscriptions["inactive"]
    assert not WebhookDelivery.objects.filter(subscription__in=[foreign, inactive]).exists()


def test_a_driver_subscription_gets_no_order_events(api, org, receiver):
    subscribe(org, receiver, ["driver.*"])
    create_order(api, "ORD-D")
    assert not WebhookDelivery.objects.exists()
    assert send_due_webhooks() == 0
    assert receiver.requests == []


def test_a_rolled_back_change_leaves_neither_event_nor_delivery(org, receiver):
    """The fan-out shares the service's transaction: a refused transition writes nothing."""
    from core.exceptions import InvalidTransition

    subscribe(org, receiver, ["*"])
    driver = make_active_driver(org)
    before = (DomainEvent.objects.count(), WebhookDelivery.objects.count())
    with pytest.raises(InvalidTransition):
        fleet_services.change_driver_status(
            driver_id=driver.id, organisation=org, action="approve", actor=SYSTEM, reason="Again."
        )
    assert (DomainEvent.objects.count(), WebhookDelivery.objects.count()) == before


def test_each_subscriber_gets_its_own_signature(org, other_org, receiver, api):
    """Two subscriptions to the same URL: each request verifies with its own secret only."""
    first = subscribe(org, receiver, ["order.*"])
    second = subscribe(org, receiver, ["*"])
    create_order(api, "ORD-E")
    assert send_due_webhooks() == 2
    requests = receiver.wait_for(2)
    by_delivery = {r.header("Fleetroot-Delivery-Id"): r for r in requests}
    for delivery in WebhookDelivery.objects.select_related("subscription"):
        request = by_delivery[str(delivery.id)]
        mine = delivery.subscription.secret
        theirs = (second if delivery.subscription == first else first).secret
        assert verify(mine, request.body, request.header(SIGNATURE_HEADER))
        assert not verify(theirs, request.body, request.header(SIGNATURE_HEADER))
    assert len({r.body for r in requests}) == 1  # same event, same body
