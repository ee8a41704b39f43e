"""Request bodies keep their JSON types: "4999", 1.0 or true are not integers, "yes" or 1 not
booleans, 5 not a string. Each is a 400 naming the field, and nothing is written."""

import pytest

from dispatch.models import Order
from fleet.models import Hub, Zone
from tests.api.conftest import error_of
from tests.api.test_fleet_api import SQUARE
from tests.conftest import order_payload, post

HUB = {"name": "Store 9", "address": "Kamppi 1", "location": {"lat": 60.169, "lon": 24.932}}
ZONE = {"name": "Kamppi", "area": SQUARE, "h3_resolution": 9}
SUBSCRIPTION = {"url": "https://oms.example/hooks", "event_types": ["order.*"]}


def refused(response, field) -> bool:
    return response.status_code == 400 and list(error_of(response)["fields"]) == [field]


@pytest.mark.parametrize("value", ["4999", 1.0, True, "1e3"])
def test_order_integers_must_be_json_integers(api, org, value):
    response = post(api, "/api/v1/orders", order_payload(declared_value_minor=value))
    assert refused(response, "declared_value_minor"), response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize("value", ["9", 9.0, False])
def test_zone_resolution_must_be_a_json_integer(api, org, value):
    assert refused(post(api, "/api/v1/zones", {**ZONE, "h3_resolution": value}), "h3_resolution")
    assert not Zone.objects.exists()


@pytest.mark.parametrize("value", ["yes", "false", 1, 0])
def test_hub_is_active_must_be_true_or_false(api, org, value):
    assert refused(post(api, "/api/v1/hubs", {**HUB, "is_active": value}), "is_active")
    assert not Hub.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("name", 5), ("address", True), ("name", ["Store"])])
def test_hub_text_must_be_a_string(api, org, field, value):
    assert refused(post(api, "/api/v1/hubs", {**HUB, field: value}), field)


@pytest.mark.parametrize("value", ["yes", 1])
def test_client_and_subscription_is_active_must_be_true_or_false(api, org_a, value):
    client = api.patch(f"/api/v1/clients/{org_a.client.id}", {"is_active": value}, format="json")
    assert refused(client, "is_active")
    subscription = api.patch(
        f"/api/v1/webhook-subscriptions/{org_a.subscription.id}", {"is_active": value}, format="json"
    )
    assert refused(subscription, "is_active")


def test_list_items_and_ids_must_be_strings(api, org):
    assert refused(
        post(api, "/api/v1/webhook-subscriptions", {**SUBSCRIPTION, "event_types": [5]}), "event_types.0"
    )
    assert refused(post(api, "/api/v1/clients", {"slug": 5, "name": "Retail"}), "slug")
    assert refused(post(api, "/api/v1/orders", order_payload(client_id=12)), "client_id")


def test_null_stays_governed_by_allow_null_and_right_types_pass(api, org):
    assert post(api, "/api/v1/orders", order_payload(hub_id=None)).status_code == 201
    assert post(api, "/api/v1/hubs", {**HUB, "is_active": False}).status_code == 201
    assert refused(post(api, "/api/v1/hubs", {**HUB, "name": "Other", "is_active": None}), "is_active")


def test_the_rule_is_about_json_a_form_encoded_body_keeps_drfs_parsing():
    from django.http import QueryDict
    from rest_framework import serializers

    from core.api.fields import StrictSerializer

    class Form(StrictSerializer):
        count = serializers.IntegerField()
        flag = serializers.BooleanField()

    form = Form(data=QueryDict("count=3&flag=true"))
    assert form.is_valid(), form.errors
    assert form.validated_data == {"count": 3, "flag": True}
    assert not Form(data={"count": "3", "flag": True}).is_valid()
