"""The admin edits an order's details only through update_order_details: as far as the status
allows, with a reason, recorded with who did it."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.actors import Actor
from core.models import DomainEvent
from dispatch.models import Order
from dispatch.services.orders import (
    EDITABLE_FIELDS_BY_STATUS,
    create_order,
    force_order_status,
    transition_order,
    update_order_details,
)
from tests.conftest import admin_form_data, make_active_driver, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("test")


@pytest.fixture
def order(org, api_key):
    return create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload()))


def delivered(order, org):
    """An order forced to DELIVERED (with a driver, as the table requires)."""
    driver = make_active_driver(org)
    Order.objects.filter(pk=order.pk).update(driver=driver, status="ASSIGNED")
    force_order_status(order_id=order.pk, organisation=org, to_status="DELIVERED", actor=SYSTEM, reason="t")
    return Order.objects.get(pk=order.pk)


def form_fields(response) -> dict:
    return response.context["adminform"].form.fields


def test_the_change_form_asks_for_a_reason_and_shows_only_what_the_status_allows(staff_client, order, org):
    url = reverse("admin:dispatch_order_change", args=[order.pk])
    fields = form_fields(staff_client.get(url))
    assert set(fields) == {"reason", *EDITABLE_FIELDS_BY_STATUS["CREATED"]}
    assert fields["reason"].required
    delivered(order, org)
    assert set(form_fields(staff_client.get(url))) == {"reason"}


def test_editing_notes_with_a_reason_records_the_change_with_its_actor_and_reason(
    staff_client, order, staff_user
):
    url = reverse("admin:dispatch_order_change", args=[order.pk])
    data = admin_form_data(staff_client.get(url))
    data.update(notes="Leave at the back door", reason="Recipient called the support line")
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    order.refresh_from_db()
    assert order.notes == "Leave at the back door"
    event = DomainEvent.objects.get(event_type="order.updated", subject_id=str(order.pk))
    assert event.actor_user == staff_user and event.reason == "Recipient called the support line"
    assert event.payload["changes"] == {"notes": {"old": "Ring twice", "new": "Leave at the back door"}}
    row = order.history.latest()
    assert row.history_user == staff_user
    assert row.history_change_reason == "Recipient called the support line"


def test_without_a_reason_the_form_shows_an_error_and_nothing_changes(staff_client, order):
    url = reverse("admin:dispatch_order_change", args=[order.pk])
    data = admin_form_data(staff_client.get(url))
    data.update(notes="Changed quietly", reason="")
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    order.refresh_from_db()
    assert order.notes == "Ring twice"
    assert not DomainEvent.objects.filter(event_type="order.updated").exists()


def test_a_delivered_order_address_cannot_be_edited(staff_client, order, org):
    done = delivered(order, org)
    url = reverse("admin:dispatch_order_change", args=[order.pk])
    data = admin_form_data(staff_client.get(url))
    data.update(dropoff_address="Elsewhere 1", organisation="x", reason="Typo in the address")
    staff_client.post(url, data)
    assert Order.objects.get(pk=order.pk).dropoff_address == done.dropoff_address
    assert not DomainEvent.objects.filter(event_type="order.updated").exists()
    with pytest.raises(ValidationError) as refused:
        update_order_details(
            order_id=order.pk,
            organisation=org,
            changes={"dropoff_address": "Elsewhere 1"},
            actor=SYSTEM,
            reason="Typo in the address",
        )
    assert refused.value.message_dict == {
        "dropoff_address": ["Cannot be changed while the order is DELIVERED."]
    }


def test_an_assigned_order_keeps_its_locations_but_its_notes_can_change(order, org):
    driver = make_active_driver(org)
    Order.objects.filter(pk=order.pk).update(driver=driver, status="ASSIGNED")
    with pytest.raises(ValidationError) as refused:
        update_order_details(
            order_id=order.pk, organisation=org, changes={"dropoff_address": "B 2"}, actor=SYSTEM, reason="r"
        )
    assert "dropoff_address" in refused.value.message_dict
    with pytest.raises(ValidationError) as never:
        update_order_details(
            order_id=order.pk, organisation=org, changes={"external_ref": "X"}, actor=SYSTEM, reason="r"
        )
    assert "external_ref" in never.value.message_dict
    update_order_details(
        order_id=order.pk, organisation=org, changes={"notes": "Gate code 1234"}, actor=SYSTEM, reason="r"
    )
    assert Order.objects.get(pk=order.pk).notes == "Gate code 1234"


def test_a_window_edit_that_breaks_the_table_rules_names_the_field(order, org):
    with pytest.raises(ValidationError) as refused:
        update_order_details(
            order_id=order.pk,
            organisation=org,
            changes={"pickup_window_end": order.pickup_window_start},
            actor=SYSTEM,
            reason="Shop closes early",
        )
    assert "pickup_window_end" in refused.value.message_dict


def test_the_order_history_page_names_who_changed_it_and_shows_no_missing_driver(
    staff_client, order, org, dispatcher
):
    driver = make_active_driver(org)
    transition_order(
        order_id=order.pk, organisation=org, action="assign", actor=Actor.for_user(dispatcher), driver=driver
    )
    force_order_status(
        order_id=order.pk, organisation=org, to_status="CANCELLED", actor=SYSTEM, reason="Shop closed"
    )
    rows = list(Order.history.filter(id=order.pk).order_by("history_date"))
    assert [row.history_user for row in rows] == [None, dispatcher, None]
    assert rows[1].history_change_reason == "assign"
    assert rows[2].history_change_reason == "override: Shop closed; by System rule: test"
    html = staff_client.get(reverse("admin:dispatch_order_history", args=[order.pk])).content.decode()
    assert "pk=None" not in html
    assert "dispatcher" in html and "Driver One" in html and "—" in html


@pytest.mark.parametrize(
    "typed",
    [
        '{"type": "Point", "coordinates": [1e30, 60]}',
        '{"type": "Point", "coordinates": [1' + "0" * 400 + ", 60]}",
        '{"type": "Point", "coordinates": [2778000, 1e300]}',
        "SRID=4326;POINT(500 60)",
        "SRID=2393;POINT(3385000 6672000)",
    ],
    ids=["1e30", "400-digit", "1e300", "lon-500", "foreign-srid"],
)
def test_a_place_off_the_map_is_a_form_error_not_a_hang(staff_client, order, typed):
    """Projecting such numbers back to lon/lat never finished, inside the admin's transaction."""
    url = reverse("admin:dispatch_order_change", args=[order.pk])
    data = admin_form_data(staff_client.get(url))
    data.update(pickup_location=typed, reason="Moved")
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "pickup_location" in response.context["adminform"].form.errors
    order.refresh_from_db()
    assert order.pickup_location.x == pytest.approx(24.941)
