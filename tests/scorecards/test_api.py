"""The scorecards API: each route's tenancy (another organisation, a client-limited caller, a
driver, a stranger), the CSV export, excusing a late delivery, the score's settings.

tests/api/test_tenancy.py's route walk takes SCORECARD_ROUTES from here."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from identity.models import Role
from identity.services import create_api_key
from scorecards.models import DeliveryOutcome, ExcuseCause, Outcome, ScorecardSettings
from tests.api.conftest import client_for, error_of, session_client
from tests.conftest import make_active_driver, make_user, post
from tests.scorecards.conftest import PROMISED_BY, carry, new_order

# Every scorecards route under /api/v1/ outside the router and outside the driver app, with
# the methods it takes (the driver's own, `driver-scorecard`, is in the driver walk).
SCORECARD_ROUTES = {
    "scorecard-list": ["GET"],
    "scorecard-csv": ["GET"],
    "scorecard-detail": ["GET"],
    "delivery-outcome-excuse": ["POST"],
    "scorecard-settings": ["GET", "PUT", "PATCH"],
}


def url(name, obj=None):
    if name == "scorecard-detail":
        return reverse(name, kwargs={"driver_id": obj.driver_id})
    if name == "delivery-outcome-excuse":
        return reverse(name, kwargs={"outcome_id": obj.id})
    return reverse(name)


@pytest.fixture
def late(org, driver):
    carry(new_order(org), org, driver, delivered_at=PROMISED_BY + timedelta(minutes=12))
    return DeliveryOutcome.objects.get(driver=driver, outcome=Outcome.LATE)


@pytest.fixture
def elsewhere(other_org):
    """Another organisation's driver with a late delivery of their own."""
    driver = make_active_driver(other_org, name="Other Courier", phone="+358402000009")
    carry(new_order(other_org), other_org, driver, delivered_at=PROMISED_BY + timedelta(minutes=5))
    return DeliveryOutcome.objects.get(driver=driver)


def test_the_table_names_every_scorecards_api_route():
    from tests.api.test_tenancy import resolver_routes

    names = {
        name
        for route, name in resolver_routes()
        if route.startswith(("api/v1/scorecard", "api/v1/delivery-outcomes"))
    }
    assert names == set(SCORECARD_ROUTES)


def test_another_organisation_sees_and_changes_nothing_of_ours(org, late, elsewhere, other_org):
    other_admin = session_client(make_user(other_org, Role.ORG_ADMIN, "other-admin"))
    for caller in (other_admin, client_for(create_api_key(organisation=other_org, name="b"))):
        listed = caller.get(reverse("scorecard-list")).json()["results"]
        assert [row["driver"]["id"] for row in listed] == [str(elsewhere.driver_id)]
        exported = caller.get(reverse("scorecard-csv")).content.decode()
        assert late.driver.name not in exported and "Other Courier" in exported
        response = caller.get(url("scorecard-detail", late))
        assert response.status_code == 404
        error_of(response)
        response = post(caller, url("delivery-outcome-excuse", late), {"reason": "Probe."})
        assert response.status_code == 404
        error_of(response)
        settings = caller.get(reverse("scorecard-settings")).json()
        assert settings["last_n_orders"] == 50
    late.refresh_from_db()
    assert late.excused_cause == ""
    # Their own work answers.
    assert other_admin.get(url("scorecard-detail", elsewhere)).status_code == 200


# What a client-limited caller may read: its own view of the drivers who carried its orders.
CLIENT_READS = {"scorecard-list", "scorecard-csv", "scorecard-detail"}


def client_callers(org, shop) -> dict:
    return {
        "client key": client_for(create_api_key(organisation=org, name="shop-oms", client=shop)),
        "client user": session_client(make_user(org, Role.CLIENT_USER, "shop-user", client=shop)),
    }


def test_client_limited_callers_write_nothing_and_strangers_are_refused_every_route(org, late):
    from identity.models import Client

    shop = Client.objects.create(organisation=org, slug="shop", name="Shop")
    callers = client_callers(org, shop)
    for name, methods in SCORECARD_ROUTES.items():
        for method in methods:
            for who, caller in callers.items():
                response = caller.generic(
                    method,
                    url(name, late),
                    data=json.dumps({"reason": "x"}),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="probe-1",
                )
                if name in CLIENT_READS:
                    # The late delivery is not the shop's: its driver is not in the shop's view.
                    expected = 404 if name == "scorecard-detail" else 200
                    assert response.status_code == expected, (who, name, response.status_code)
                    if expected == 200 and name == "scorecard-list":
                        assert response.json() == {"results": []}
                    continue
                assert response.status_code == 403, (who, name, method, response.status_code)
                error_of(response)
            assert APIClient().generic(method, url(name, late)).status_code == 401
    late.refresh_from_db()
    assert late.excused_cause == "" and not ScorecardSettings.objects.exists()


def test_a_client_sees_only_how_its_own_orders_went_with_each_driver(org, driver):
    from identity.models import Client

    shop = Client.objects.create(organisation=org, slug="shop", name="Shop")
    other_shop = Client.objects.create(organisation=org, slug="other", name="Other Shop")
    second = make_active_driver(org, name="Second Courier", phone="+358401000778", plate="XYZ-2")
    late_by = timedelta(minutes=12)
    carry(new_order(org, client=shop), org, driver, delivered_at=PROMISED_BY + late_by)
    carry(new_order(org, client=shop), org, driver)
    carry(new_order(org, client=other_shop), org, driver, delivered_at=PROMISED_BY + late_by)
    carry(new_order(org, client=other_shop), org, second)
    for who, caller in client_callers(org, shop).items():
        [row] = caller.get(reverse("scorecard-list")).json()["results"]
        assert row["driver"] == {"id": str(driver.id), "name": driver.name}, who
        figures = row["windows"]["30d"]
        assert (figures["deliveries"], figures["on_time"], figures["late"]) == (2, 1, 1), who
        assert figures["on_time_rate"] == 0.5
        # Figures that mix every client's work are not the shop's to see.
        assert "performance_score" not in row and "acceptance_rate" not in figures
        detail = caller.get(reverse("scorecard-detail", kwargs={"driver_id": driver.id})).json()
        assert len(detail["recent_outcomes"]) == 2
        shop_orders = DeliveryOutcome.objects.filter(client=shop).values_list("order_id", flat=True)
        assert {o["order_id"] for o in detail["recent_outcomes"]} == {str(i) for i in shop_orders}
        response = caller.get(reverse("scorecard-detail", kwargs={"driver_id": second.id}))
        assert response.status_code == 404, who
        error_of(response)
        rows = list(csv.reader(io.StringIO(caller.get(reverse("scorecard-csv")).content.decode())))
        assert rows[0][:3] == ["driver_id", "driver_name", "client_id"]
        assert [r[0] for r in rows[1:]] == [str(driver.id)]
        assert "Second Courier" not in caller.get(reverse("scorecard-csv")).content.decode()
    # The organisation's own view still counts every client's deliveries.
    admin_row = next(
        row
        for row in session_client(make_user(org, Role.ORG_ADMIN, "admin-x"))
        .get(reverse("scorecard-list"))
        .json()["results"]
        if row["driver"]["id"] == str(driver.id)
    )
    assert admin_row["windows"]["30d"]["deliveries"] == 3


def test_a_driver_reads_only_their_own_scorecard(org, late):
    user = make_user(org, Role.DRIVER, "courier-two")
    other = make_active_driver(org, name="Second Courier", phone="+358401000777", plate="XYZ-1", user=user)
    caller = session_client(user)
    own = caller.get(reverse("driver-scorecard")).json()
    assert own["driver"]["id"] == str(other.id) and own["recent_outcomes"] == []
    assert own["performance_score"] == 1.0
    listed = caller.get(reverse("scorecard-list")).json()["results"]
    assert [row["driver"]["id"] for row in listed] == [str(other.id)]
    assert caller.get(url("scorecard-detail", late)).status_code == 404
    response = post(caller, url("delivery-outcome-excuse", late), {"reason": "Me."})
    assert response.status_code == 403
    for name in ("scorecard-settings",):
        assert caller.get(reverse(name)).status_code == 403


def test_the_driver_sees_their_late_delivery_with_its_cause(org, driver, late):
    user = make_user(org, Role.DRIVER, "driver-one")
    driver.user = user
    driver.save(update_fields=["user"])
    body = session_client(user).get(reverse("driver-scorecard")).json()
    [shown] = body["recent_outcomes"]
    assert shown["outcome"] == "LATE" and shown["late_seconds"] == 720
    assert body["windows"]["30d"]["deliveries"] == 1
    assert body["history"][-1]["performance_score"] == body["performance_score"]


def test_a_dispatcher_excuses_a_late_delivery_and_the_scorecard_follows(org, dispatcher, late):
    caller = session_client(dispatcher)
    before = caller.get(url("scorecard-detail", late)).json()
    assert before["windows"]["7d"]["on_time_rate"] is None or before["windows"]["30d"]["late"] == 1
    response = post(
        caller, url("delivery-outcome-excuse", late), {"reason": "The bridge was closed by police."}
    )
    assert response.status_code == 200, response.content
    assert response.json()["excused_cause"] == ExcuseCause.DISPATCHER_EXCUSED
    after = caller.get(url("scorecard-detail", late)).json()
    assert after["windows"]["30d"]["late"] == 0 and after["windows"]["30d"]["late_excused"] == 1
    assert after["last_n"]["late_excused"] == 1
    late.refresh_from_db()
    assert late.excuse_inputs["reason"] == "The bridge was closed by police."
    assert late.excuse_inputs["excused_by"]["label"] == dispatcher.username
    assert late.history.get(history_type="~").history_user == dispatcher
    from core.models import DomainEvent

    event = DomainEvent.objects.get(event_type="delivery.excused")
    assert event.actor_user == dispatcher and event.reason == "The bridge was closed by police."
    again = post(caller, url("delivery-outcome-excuse", late), {"reason": "Twice."})
    assert again.status_code == 400 and "outcome_id" in error_of(again)["fields"]


def test_an_excuse_needs_a_reason_and_a_late_delivery(org, dispatcher, driver, late):
    caller = session_client(dispatcher)
    for body, field in (({"reason": ""}, "reason"), ({}, "reason"), ({"reason": "x" * 501}, "reason")):
        response = post(caller, url("delivery-outcome-excuse", late), body)
        assert response.status_code == 400 and field in error_of(response)["fields"], body
    carry(new_order(org), org, driver)
    on_time = DeliveryOutcome.objects.get(outcome=Outcome.ON_TIME)
    response = post(caller, url("delivery-outcome-excuse", on_time), {"reason": "Nothing to excuse."})
    assert response.status_code == 400 and "outcome_id" in error_of(response)["fields"]
    late.refresh_from_db()
    assert late.excused_cause == ""


def test_the_csv_export_has_a_row_per_driver_and_is_safe_in_a_spreadsheet(org, dispatcher, driver, late):
    make_active_driver(org, name="=HYPERLINK(1)", phone="+358401000555", plate="EVIL-1")
    caller = session_client(dispatcher)
    for address in (reverse("scorecard-csv"), reverse("scorecard-list") + "?format=csv"):
        response = caller.get(address)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        by_name = {row["driver_name"]: row for row in rows}
        assert set(by_name) == {driver.name, "'=HYPERLINK(1)"}
        mine = by_name[driver.name]
        assert mine["30d_late"] == "1" and mine["30d_deliveries"] == "1"
        assert mine["last_n_orders"] == "1" and float(mine["performance_score"]) <= 1.0


def test_score_settings_are_validated_and_name_the_field(org, org_admin, dispatcher):
    admin = session_client(org_admin)
    assert admin.get(reverse("scorecard-settings")).json()["weights"]["on_time"] == 2.0
    bad = [
        ("patch", {"weights": {"speed": 1}}, "weights.speed"),
        ("patch", {"weights": {"rating": 101}}, "weights.rating"),
        ("patch", {"weights": {"rating": -1}}, "weights.rating"),
        ("patch", {"weights": {"rating": True}}, "weights.rating"),
        ("patch", {"last_n_orders": 0}, "last_n_orders"),
        ("patch", {"prior_strength": 5000}, "prior_strength"),
        ("patch", {"colour": "red"}, "colour"),
        ("put", {"weights": {"on_time": 1}}, "prior_strength"),
        (
            "put",
            {
                "weights": {"acceptance": 0, "on_time": 0, "rating": 0, "completion": 0},
                "prior_strength": 5,
                "last_n_orders": 10,
            },
            "weights",
        ),
    ]
    for method, body, field in bad:
        response = getattr(admin, method)(reverse("scorecard-settings"), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in error_of(response)["fields"], (body, error_of(response))
    assert not ScorecardSettings.objects.exists()
    response = admin.patch(reverse("scorecard-settings"), {"weights": {"rating": 3}}, format="json")
    assert response.status_code == 200
    assert response.json()["weights"] == {"acceptance": 1.0, "on_time": 2.0, "rating": 3, "completion": 1.0}
    body = {"weights": {"on_time": 1}, "prior_strength": 0, "last_n_orders": 20}
    assert admin.put(reverse("scorecard-settings"), body, format="json").json() == body
    # A dispatcher reads them but does not change them.
    assert (
        session_client(dispatcher)
        .patch(reverse("scorecard-settings"), {"last_n_orders": 5}, format="json")
        .status_code
        == 403
    )
