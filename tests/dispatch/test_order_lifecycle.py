"""The order state machine: every legal path, every illegal step refused, all recorded."""

import io
import threading
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from PIL import Image

from core.actors import Actor, ActorType
from core.exceptions import ConcurrentChange, InvalidTransition
from core.geo import make_point
from core.models import DomainEvent
from dispatch.models import Order, OrderStatus, OrderTransition, ProofOfDelivery
from dispatch.services.orders import (
    create_order,
    deliver_order,
    force_order_status,
    transition_order,
)
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test-rule")
HAPPY_PATH = ["assign", "start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (40, 20), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def driver(org):
    return make_active_driver(org)


@pytest.fixture
def order(org):
    return create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload()))


def step(order, action, org, **kwargs):
    return transition_order(order_id=order.id, organisation=org, action=action, actor=SYSTEM, **kwargs)


def deliver(order, org, driver):
    return deliver_order(
        order_id=order.id,
        organisation=org,
        driver=driver,
        actor=Actor.system("driver-app"),
        location=make_point(lat=60.1655, lon=24.938),
        captured_at=datetime.now(UTC),
        signature=ContentFile(png_bytes(), name="signature.png"),
        recipient_name="Maija",
    )


def test_happy_path_is_recorded_with_actor_and_events(org, order, driver):
    for action in HAPPY_PATH:
        step(order, action, org, driver=driver if action == "assign" else None)
    delivered = deliver(order, org, driver)
    assert delivered.status == OrderStatus.DELIVERED
    assert delivered.driver == driver
    history = list(order.transitions.values_list("from_status", "to_status"))
    assert history == [
        ("CREATED", "ASSIGNED"),
        ("ASSIGNED", "EN_ROUTE_PICKUP"),
        ("EN_ROUTE_PICKUP", "ARRIVED_PICKUP"),
        ("ARRIVED_PICKUP", "PICKED_UP"),
        ("PICKED_UP", "ARRIVED_DROPOFF"),
        ("ARRIVED_DROPOFF", "DELIVERED"),
    ]
    assert set(order.transitions.values_list("actor_type", flat=True)) == {ActorType.SYSTEM}
    events = list(
        DomainEvent.objects.filter(subject_id=str(order.id))
        .order_by("occurred_at")
        .values_list("event_type", flat=True)
    )
    assert events == [
        "order.created",
        "order.assigned",
        "order.en_route_pickup",
        "order.arrived_pickup",
        "order.picked_up",
        "order.arrived_dropoff",
        "order.delivered",
    ]
    assert delivered.proof_of_delivery.signature.name.endswith(".png")


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ([], "pick_up"),
        ([], "deliver"),
        ([], "start_pickup"),
        (["assign"], "arrive_dropoff"),
        (["assign", "start_pickup", "arrive_pickup", "pick_up"], "cancel"),
        (["assign"], "assign"),
        (["assign", "start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"], "release"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(org, order, driver, path, action):
    for done in path:
        step(order, done, org, driver=driver if done == "assign" else None)
    before = Order.objects.get(id=order.id).status
    transitions_before = OrderTransition.objects.count()
    with pytest.raises((InvalidTransition, ValidationError)) as caught:
        step(order, action, org, driver=driver, reason="because")
    if isinstance(caught.value, InvalidTransition):
        assert before in caught.value.message
    assert Order.objects.get(id=order.id).status == before
    assert OrderTransition.objects.count() == transitions_before


def test_terminal_states_accept_nothing(org, order):
    step(order, "cancel", org, reason="Customer changed their mind")
    for action in ["assign", "offer", "release", "cancel", "start_pickup", "fail", "return_to_sender"]:
        with pytest.raises((InvalidTransition, ValidationError)):
            step(order, action, org, reason="x")


def test_release_returns_the_order_to_the_pool_and_names_the_previous_driver(org, order, driver):
    step(order, "assign", org, driver=driver)
    released = step(order, "release", org, reason="Driver stuck in traffic")
    assert released.status == OrderStatus.CREATED and released.driver is None
    events = DomainEvent.objects.filter(subject_id=str(order.id)).order_by("sequence")
    assert [e.event_type for e in events] == ["order.created", "order.assigned", "order.released"]
    event = events.last()
    assert event.payload["previous_driver_id"] == str(driver.id)
    assert event.payload["status"] == "CREATED" and event.payload["action"] == "release"
    assert event.reason == "Driver stuck in traffic"


def test_failed_then_returned(org, order, driver):
    for action in HAPPY_PATH:
        step(order, action, org, driver=driver if action == "assign" else None)
    step(order, "fail", org, reason="Recipient not at home")
    returned = step(order, "return_to_sender", org, reason="Back to the hub")
    assert returned.status == OrderStatus.RETURNED


@pytest.mark.parametrize("action", ["cancel", "fail", "release", "return_to_sender"])
def test_unhappy_actions_need_a_reason(org, order, action):
    with pytest.raises(ValidationError) as caught:
        step(order, action, org, reason="  ")
    assert "reason" in caught.value.message_dict


def test_assign_refuses_an_inactive_or_foreign_driver(org, other_org, order, driver):
    foreign = make_active_driver(other_org, phone="+358401000099")
    with pytest.raises(ValidationError) as caught:
        step(order, "assign", org, driver=foreign)
    assert "driver_id" in caught.value.message_dict
    from fleet.services import change_driver_status

    change_driver_status(driver_id=driver.id, organisation=org, action="suspend", actor=SYSTEM, reason="Test")
    driver.refresh_from_db()
    with pytest.raises(ValidationError):
        step(order, "assign", org, driver=driver)
    assert Order.objects.get(id=order.id).status == OrderStatus.CREATED


def test_deliver_needs_proof_and_the_assigned_driver(org, order, driver):
    for action in HAPPY_PATH:
        step(order, action, org, driver=driver if action == "assign" else None)
    with pytest.raises(ValidationError) as caught:
        step(order, "deliver", org)
    assert "proof_of_delivery" in caught.value.message_dict
    other = make_active_driver(org, name="Other", phone="+358401000002", plate="XYZ-999")
    with pytest.raises(ValidationError):
        deliver(order, org, other)
    assert Order.objects.get(id=order.id).status == OrderStatus.ARRIVED_DROPOFF


def test_stale_instance_cannot_overwrite_a_newer_status(org, order, driver):
    """Optimistic check on the status column: works on SpatiaLite as on PostgreSQL."""
    stale = Order.objects.get(id=order.id)
    step(order, "cancel", org, reason="Cancelled elsewhere")
    stale.offer()
    from django_fsm import ConcurrentTransition

    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()
    assert Order.objects.get(id=order.id).status == OrderStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transitions_never_both_apply(org, driver):
    order = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="RACE-1")))
    second_driver = make_active_driver(org, name="Second", phone="+358401000003", plate="RAC-222")
    barrier = threading.Barrier(2)
    outcomes = []

    def assign(to):
        try:
            barrier.wait()
            transition_order(order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=to)
            outcomes.append(("ok", to.id))
        except (InvalidTransition, ConcurrentChange) as exc:
            outcomes.append(("refused", type(exc).__name__))
        finally:
            connection.close()

    threads = [threading.Thread(target=assign, args=(d,)) for d in (driver, second_driver)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kind for kind, _ in outcomes) == ["ok", "refused"]
    winner = next(value for kind, value in outcomes if kind == "ok")
    order.refresh_from_db()
    assert order.driver_id == winner
    assert OrderTransition.objects.filter(order=order, action="assign").count() == 1


def test_override_is_audited_and_needs_a_reason(org, order, driver, dispatcher):
    with pytest.raises(ValidationError):
        force_order_status(
            order_id=order.id,
            organisation=org,
            to_status="CANCELLED",
            actor=Actor.for_user(dispatcher),
            reason="",
        )
    with pytest.raises(ValidationError) as caught:
        force_order_status(
            order_id=order.id,
            organisation=org,
            to_status="PICKED_UP",
            actor=Actor.for_user(dispatcher),
            reason="Driver has it",
        )
    assert "to_status" in caught.value.message_dict
    forced = force_order_status(
        order_id=order.id,
        organisation=org,
        to_status="CANCELLED",
        actor=Actor.for_user(dispatcher),
        reason="Duplicate order",
    )
    assert forced.status == OrderStatus.CANCELLED
    row = forced.transitions.get()
    assert row.is_override and row.actor_user == dispatcher and row.reason == "Duplicate order"
    assert DomainEvent.objects.filter(event_type="order.cancelled", payload__is_override=True).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pickup_window_end": datetime(2030, 1, 1, 11, 0, tzinfo=UTC)}, "pickup_window_end"),
        ({"dropoff_window_end": datetime(2030, 1, 1, 11, 0, tzinfo=UTC)}, "dropoff_window_end"),
        ({"tip_minor": -1}, "tip_minor"),
        ({"external_ref": "DUP"}, "external_ref"),
    ],
)
def test_the_service_names_the_field_when_the_database_refuses(org, change, field):
    """Service callers that skip the API's validation still get the field named, nothing half-written."""
    from dataclasses import replace

    create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="DUP")))
    data = replace(order_input(order_payload(ref="NEW")), **change)
    before = DomainEvent.objects.count()
    with pytest.raises(ValidationError) as caught:
        create_order(organisation=org, actor=SYSTEM, data=data)
    assert field in caught.value.message_dict
    assert Order.objects.count() == 1 and DomainEvent.objects.count() == before


def test_a_bad_proof_image_stores_nothing(org, order, driver, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    for action in HAPPY_PATH:
        step(order, action, org, driver=driver if action == "assign" else None)
    with pytest.raises(ValidationError) as caught:
        deliver_order(
            order_id=order.id,
            organisation=org,
            driver=driver,
            actor=SYSTEM,
            location=make_point(lat=60.1655, lon=24.938),
            captured_at=datetime.now(UTC),
            signature=ContentFile(b"<svg onload=alert(1)>", name="sig.png"),
        )
    assert "signature" in caught.value.message_dict
    assert Order.objects.get(id=order.id).status == OrderStatus.ARRIVED_DROPOFF
    assert not ProofOfDelivery.objects.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_proof_before_arrival_is_refused_and_stores_nothing(org, order, driver, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    step(order, "assign", org, driver=driver)
    with pytest.raises(InvalidTransition):
        deliver(order, org, driver)
    assert not ProofOfDelivery.objects.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
