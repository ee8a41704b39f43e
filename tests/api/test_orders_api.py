"""Orders over the API: create, list with filters and cursor pages, retrieve, cancel."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor, ActorType
from core.models import DomainEvent
from dispatch.models import Order, OrderStatus, OrderTransition
from dispatch.services.orders import create_order, transition_order
from fleet.services import PingInput, record_ping
from tests.api.conftest import error_of, session_client
from tests.conftest import make_active_driver, make_hub, order_payload, post
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test-matching")
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)  # before any order made "now"


def make_order(org, ref, *, created_at=None, actions=(), driver=None, **overrides) -> Order:
    order = create_order(
        organisation=org, actor=SYSTEM, data=order_input(order_payload(ref=ref, **overrides))
    )
    for action in actions:
        transition_order(
            order_id=order.id,
            organisation=org,
            action=action,
            actor=SYSTEM,
            driver=driver if action == "assign" else None,
            reason="test" if action == "cancel" else "",
        )
    if created_at is not None:
        Order.objects.filter(id=order.id).update(created_at=created_at)
    order.refresh_from_db()
    return order


def refs(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return [row["external_ref"] for row in response.json()["results"]]


@pytest.fixture
def driver(org):
    return make_active_driver(org)


# --- create --------------------------------------------------------------------------------


def test_create_returns_the_order_in_utc_and_records_who_created_it(api, api_key, org):
    body = order_payload(ref="CREATE-1", currency="SEK", priority="urgent")
    body["pickup"]["window"] = {"start": "2030-01-01T14:00:00+02:00", "end": "2030-01-01T14:30:00+02:00"}
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "CREATED"
    assert data["external_ref"] == "CREATE-1"
    assert data["pickup"]["window"] == {
        "start": "2030-01-01T12:00:00+00:00",
        "end": "2030-01-01T12:30:00+00:00",
    }
    assert data["pickup"]["lat"] == pytest.approx(60.169) and data["pickup"]["lon"] == pytest.approx(24.941)
    assert data["weight_kg"] == 2.5 and data["declared_value_minor"] == 4999 and data["tip_minor"] == 200
    assert data["currency"] == "SEK" and data["priority"] == "urgent"
    assert data["recipient"] == {"name": "Maija Meikäläinen", "phone": "+358401234567", "email": ""}
    assert data["history"] == [] and data["driver_id"] is None

    order = Order.objects.get(id=data["id"])
    assert order.organisation == org
    assert order.pickup_window_start == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert order.weight_kg == Decimal("2.50")
    event = DomainEvent.objects.get(subject_id=str(order.id))
    assert event.event_type == "order.created"
    assert event.actor_type == ActorType.API_KEY and event.actor_api_key_id == api_key.api_key.id


def test_currency_defaults_to_the_organisations(api):
    body = order_payload(ref="CUR-1")
    body.pop("currency", None)
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 201
    assert response.json()["currency"] == "EUR"


def test_a_duplicate_external_ref_is_refused_naming_it(api, other_api, org):
    assert post(api, "/api/v1/orders", order_payload(ref="DUP-1")).status_code == 201
    response = post(api, "/api/v1/orders", order_payload(ref="DUP-1"))
    assert response.status_code == 400
    error = error_of(response)
    assert error["fields"] == {"external_ref": ["An order with this reference already exists."]}
    assert "external_ref" in error["message"]
    assert Order.objects.filter(organisation=org, external_ref="DUP-1").count() == 1
    # References are per organisation: another organisation may use the same one.
    assert post(other_api, "/api/v1/orders", order_payload(ref="DUP-1")).status_code == 201


def test_a_session_user_creates_as_themself(dispatcher):
    response = post(session_client(dispatcher), "/api/v1/orders", order_payload(ref="BY-HAND"))
    assert response.status_code == 201
    event = DomainEvent.objects.get(subject_id=response.json()["id"])
    assert event.actor_type == ActorType.USER and event.actor_user == dispatcher


# --- list, filters, pages ------------------------------------------------------------------


def test_list_shows_orders_newest_first_without_history(api, org):
    for minute, ref in enumerate(["OLD", "MID", "NEW"]):
        make_order(org, ref, created_at=T0 + timedelta(minutes=minute))
    response = api.get("/api/v1/orders")
    assert refs(response) == ["NEW", "MID", "OLD"]
    assert "history" not in response.json()["results"][0]


def test_filter_by_several_statuses(api, org, driver):
    make_order(org, "S-CREATED")
    make_order(org, "S-CANCELLED", actions=["cancel"])
    make_order(org, "S-ASSIGNED", actions=["assign"], driver=driver)
    both = api.get("/api/v1/orders", {"status": ["CREATED", "CANCELLED"]})
    assert sorted(refs(both)) == ["S-CANCELLED", "S-CREATED"]
    assert refs(api.get("/api/v1/orders", {"status": "ASSIGNED"})) == ["S-ASSIGNED"]
    bad = api.get("/api/v1/orders", {"status": "LOST"})
    assert bad.status_code == 400
    assert list(error_of(bad)["fields"]) == ["status"]


def test_filter_by_external_ref_driver_and_hub(api, org, driver):
    hub = make_hub(org)
    make_order(org, "F-1", actions=["assign"], driver=driver)
    make_order(org, "F-2", hub_id=str(hub.id))
    make_order(org, "F-3")
    assert refs(api.get("/api/v1/orders", {"external_ref": "F-3"})) == ["F-3"]
    assert refs(api.get("/api/v1/orders", {"external_ref": "F-"})) == []  # exact, not a prefix
    assert refs(api.get("/api/v1/orders", {"driver": str(driver.id)})) == ["F-1"]
    assert refs(api.get("/api/v1/orders", {"hub": str(hub.id)})) == ["F-2"]
    bad = api.get("/api/v1/orders", {"driver": "not-a-uuid"})
    assert bad.status_code == 400 and list(error_of(bad)["fields"]) == ["driver"]


def test_filter_by_creation_time_is_half_open(api, org):
    for hour in range(3):
        make_order(org, f"T-{hour}", created_at=T0 + timedelta(hours=hour))
    one = (T0 + timedelta(hours=1)).isoformat()
    assert refs(api.get("/api/v1/orders", {"created_after": one})) == ["T-2", "T-1"]
    assert refs(api.get("/api/v1/orders", {"created_before": one})) == ["T-0"]
    window = {"created_after": T0.isoformat(), "created_before": (T0 + timedelta(hours=2)).isoformat()}
    assert refs(api.get("/api/v1/orders", window)) == ["T-1", "T-0"]
    bad = api.get("/api/v1/orders", {"created_after": "yesterday"})
    assert bad.status_code == 400 and list(error_of(bad)["fields"]) == ["created_after"]


def test_cursor_pages_are_stable_while_orders_arrive(api, org):
    for minute in range(5):
        make_order(org, f"P-{minute}", created_at=T0 + timedelta(minutes=minute))
    first = api.get("/api/v1/orders", {"page_size": 2})
    assert refs(first) == ["P-4", "P-3"]
    assert first.json()["previous"] is None
    # A new order arrives while the caller pages: it is newest, so it is not in later pages.
    assert post(api, "/api/v1/orders", order_payload(ref="P-NEW")).status_code == 201
    second = api.get(first.json()["next"])
    assert refs(second) == ["P-2", "P-1"]
    third = api.get(second.json()["next"])
    assert refs(third) == ["P-0"]
    assert third.json()["next"] is None
    assert refs(api.get(third.json()["previous"])) == ["P-2", "P-1"]
    assert refs(api.get("/api/v1/orders", {"page_size": 10})) == ["P-NEW", "P-4", "P-3", "P-2", "P-1", "P-0"]
    bad = api.get("/api/v1/orders", {"cursor": "not-a-cursor"})
    assert bad.status_code == 404 and error_of(bad)["message"] == "Invalid cursor"


def test_listing_costs_the_same_queries_for_few_or_many_rows(api, org, driver):
    def queries(url) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200
        return len(captured)

    make_order(org, "Q-0", actions=["assign"], driver=driver)
    api.get("/api/v1/orders")  # the key's first use stamps last_used_at: one more query, once
    few = {url: queries(url) for url in ("/api/v1/orders", "/api/v1/drivers")}
    for index in range(1, 6):
        other = make_active_driver(org, name=f"D{index}", phone=f"+35840200000{index}", plate=f"Q-{index}")
        make_order(org, f"Q-{index}", actions=["assign"], driver=other)
    assert {url: queries(url) for url in few} == few


# --- retrieve --------------------------------------------------------------------------------


def test_retrieve_an_order_and_its_drivers_last_position(api, org, driver):
    seen = timezone.now().replace(microsecond=0) - timedelta(seconds=20)
    record_ping(driver=driver, ping=PingInput(lat=60.1712, lon=24.9402, recorded_at=seen, accuracy_m=4))
    order = make_order(org, "R-1", actions=["assign"], driver=driver)
    data = api.get(f"/api/v1/orders/{order.id}").json()
    assert data["driver_id"] == str(driver.id)
    assert [row["action"] for row in data["history"]] == ["assign"]
    driver_data = api.get(f"/api/v1/drivers/{data['driver_id']}").json()
    assert driver_data["last_location"] == {"lat": pytest.approx(60.1712), "lon": pytest.approx(24.9402)}
    assert datetime.fromisoformat(driver_data["last_seen_at"].replace("Z", "+00:00")) == seen
    assert driver_data["status"] == "ACTIVE"
    assert driver_data["vehicle"]["type"] == "car"


def test_a_driver_who_never_pinged_has_no_position(api, driver):
    data = api.get(f"/api/v1/drivers/{driver.id}").json()
    assert data["last_location"] is None and data["last_seen_at"] is None


def test_retrieve_unknown_or_malformed_ids_is_404(api):
    for url in ("/api/v1/orders/00000000-0000-0000-0000-000000000000", "/api/v1/orders/not-a-uuid"):
        response = api.get(url)
        assert response.status_code == 404, url
        assert error_of(response)["code"] == "not_found"


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_records_the_api_key_and_the_reason(api, api_key, org):
    order = make_order(org, "C-1")
    response = post(api, f"/api/v1/orders/{order.id}/cancel", {"reason": "Customer changed their mind."})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "CANCELLED"
    assert data["history"] == [
        {
            "action": "cancel",
            "from_status": "CREATED",
            "to_status": "CANCELLED",
            "driver": None,
            "actor": {"type": "api_key", "label": "oms"},
            "reason": "Customer changed their mind.",
            "is_override": False,
            "occurred_at": data["history"][0]["occurred_at"],
        }
    ]
    row = OrderTransition.objects.get(order=order)
    assert row.actor_type == ActorType.API_KEY and row.actor_api_key_id == api_key.api_key.id
    event = DomainEvent.objects.get(subject_id=str(order.id), event_type="order.cancelled")
    assert event.reason == "Customer changed their mind." and event.actor_type == ActorType.API_KEY
    # The retrieve answer shows the same history.
    assert api.get(f"/api/v1/orders/{order.id}").json()["history"] == data["history"]


def test_an_order_picked_up_cannot_be_cancelled(api, org, driver):
    order = make_order(
        org, "C-2", actions=["assign", "start_pickup", "arrive_pickup", "pick_up"], driver=driver
    )
    transitions = OrderTransition.objects.filter(order=order).count()
    response = post(api, f"/api/v1/orders/{order.id}/cancel", {"reason": "Too late."})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_transition"
    assert error["message"] == "Cannot cancel an order that is PICKED_UP."
    assert "status" in error["fields"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PICKED_UP
    assert OrderTransition.objects.filter(order=order).count() == transitions


def test_a_cancelled_order_cannot_be_cancelled_again(api, org):
    order = make_order(org, "C-3", actions=["cancel"])
    response = post(api, f"/api/v1/orders/{order.id}/cancel", {"reason": "Again."})
    assert response.status_code == 409
    assert error_of(response)["message"] == "Cannot cancel an order that is CANCELLED."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x", "why": "y"}, "why"),
    ],
)
def test_cancel_needs_a_reason(api, org, body, field):
    order = make_order(org, "C-4")
    response = post(api, f"/api/v1/orders/{order.id}/cancel", body)
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED
    assert not OrderTransition.objects.filter(order=order).exists()


def test_cancel_by_a_dispatcher_is_recorded_as_the_user(org, dispatcher):
    order = make_order(org, "C-5")
    response = post(session_client(dispatcher), f"/api/v1/orders/{order.id}/cancel", {"reason": "Duplicate."})
    assert response.status_code == 200
    assert response.json()["history"][0]["actor"] == {"type": "user", "label": "dispatcher"}
