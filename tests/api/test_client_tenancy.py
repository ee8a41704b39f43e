"""Tenancy inside an organisation: a caller limited to one client of a 3PL (an API key or a
client user) sees, changes and is told only about that client's orders.

The walk calls every route of the router, as tests/api/test_tenancy.py does across
organisations, with client X's caller against client Y's rows and the organisation's own.
"""

import uuid

import pytest

from config.urls import router
from core.actors import Actor
from dispatch.models import Order
from dispatch.services.orders import create_order
from identity.models import CLIENT_SCOPES, Role
from identity.services import create_api_key, create_client
from integrations.models import WebhookDelivery
from integrations.services import create_webhook_subscription
from tests.api.conftest import client_for, error_of, session_client, snapshot
from tests.api.test_tenancy import LIST_STATUS, call, router_endpoints
from tests.conftest import make_user, order_payload, post
from tests.dispatch.factories import order_input

# What a client-limited caller may do with each resource:
# "own": the client's own rows only; "shared": the organisation's, read-only; "none": nothing.
CLIENT_REACH = {
    "order": "own",
    "webhook-subscription": "own",
    "webhook-delivery": "own",
    "hub": "shared",
    "zone": "shared",
    "driver": "none",
    "client": "none",
    "traffic-record": "none",
    "invoice": "own",
    "discipline-review": "none",
}


@pytest.fixture
def world(org_a):
    """Organisation A with client X (org_a's client, with its order) and client Y, each with an
    order and a webhook subscription of its own, and an order of the organisation's own."""
    org = org_a.organisation
    client_x = org_a.client
    client_y = create_client(organisation=org, slug="y-retail", name="Y Retail Oy")
    key_x = create_api_key(organisation=org, name="x-oms", client=client_x)
    key_y = create_api_key(organisation=org, name="y-oms", client=client_y)
    subscription_y = create_webhook_subscription(
        organisation=org, client_id=client_y.id, url="https://oms.y.example/hooks", event_types=["*"]
    )
    subscription_x = create_webhook_subscription(
        organisation=org, client_id=client_x.id, url="https://oms.x.example/hooks", event_types=["*"]
    )
    order_y = create_order(
        organisation=org,
        actor=Actor.for_api_key(key_y.api_key),
        data=order_input(order_payload(ref="Y-ORD-1")),
        limited_to_client_id=client_y.id,
    )
    own_order = create_order(
        organisation=org, actor=Actor.system("test"), data=order_input(order_payload(ref="ORG-OWN-1"))
    )
    order_x = create_order(
        organisation=org,
        actor=Actor.for_api_key(key_x.api_key),
        data=order_input(order_payload(ref="X-ORD-2")),
        limited_to_client_id=client_x.id,
    )
    return {
        "org": org_a,
        "client_x": client_x,
        "client_y": client_y,
        "key_x": key_x,
        "subscription_x": subscription_x,
        "subscription_y": subscription_y,
        "order_x": order_x,
        "order_y": order_y,
        "own_order": own_order,
        "delivery_x": WebhookDelivery.objects.get(subscription=subscription_x, event__subject_id=order_x.id),
        "delivery_y": WebhookDelivery.objects.get(subscription=subscription_y, event__subject_id=order_y.id),
    }


def foreign_ids(world) -> dict[str, str]:
    """For each resource, a row client X must not reach (client Y's, or the organisation's)."""
    org = world["org"]
    return {
        "order": str(world["order_y"].id),
        "webhook-subscription": str(world["subscription_y"].id),
        "webhook-delivery": str(world["delivery_y"].id),
        "hub": str(org.hub.id),
        "zone": str(org.zone.id),
        "driver": str(org.driver.id),
        "client": str(world["client_y"].id),
        "traffic-record": str(org.traffic.id),
        "invoice": str(world["client_y"].id),  # client Y's invoice
        "discipline-review": str(org.review.id),
    }


def foreign_secrets(world) -> list[str]:
    return [
        world["order_y"].external_ref,
        world["own_order"].external_ref,
        world["org"].subscription.url,
        world["subscription_y"].url,
        world["client_y"].name,
        str(world["delivery_y"].id),
        str(world["subscription_y"].id),
        str(world["order_y"].id),
        str(world["own_order"].id),
        world["org"].driver.name,
        str(world["org"].review.id),
    ]


@pytest.fixture(params=["api_key", "client_user"])
def x_caller(request, world):
    """Client X's caller: its client-limited API key, or a client user of X signed in."""
    if request.param == "api_key":
        return client_for(world["key_x"]), CLIENT_SCOPES
    user = make_user(world["org"].organisation, Role.CLIENT_USER, "x-user", client=world["client_x"])
    return session_client(user), user.scopes


def test_the_walk_knows_what_a_client_may_reach():
    assert {basename for _p, _v, basename in router.registry} == set(CLIENT_REACH)


def test_a_client_caller_reaches_only_its_own_clients_rows(world, x_caller):
    client, scopes = x_caller
    viewsets = {basename: viewset for _p, viewset, basename in router.registry}
    org = world["org"].organisation
    before = snapshot(org)
    secrets = foreign_secrets(world)
    problems = []
    for endpoint in router_endpoints():
        reach = CLIENT_REACH[endpoint.basename]
        viewset = viewsets[endpoint.basename]
        object_id = foreign_ids(world)[endpoint.basename] if endpoint.detail else None
        for method in endpoint.methods:
            if method == "OPTIONS":
                continue
            needed = viewset.scope_read if method in ("GET", "HEAD") else viewset.scope_write
            response = call(client, endpoint, method, object_id)
            where = f"{method} {endpoint.url(object_id)}"
            leaked = [s for s in secrets if s in response.content.decode(errors="replace")]
            if leaked:
                problems.append(f"{where} leaked {leaked}")
            if (
                needed not in scopes
                or reach == "none"
                or (reach == "shared" and method not in ("GET", "HEAD"))
            ):
                expected = {403}
            elif reach == "shared":
                expected = {200}
            elif endpoint.detail:
                expected = {404}
            else:
                expected = {LIST_STATUS[method]}
            if response.status_code not in expected:
                problems.append(f"{where}: {response.status_code}, expected {sorted(expected)}")
            elif response.status_code in (403, 404) and method != "HEAD":
                error_of(response)
    assert not problems, "\n".join(problems)
    after = snapshot(org)
    # Only X's own new rows appeared (an order, and with a key a subscription); nothing changed.
    assert set(before["orders"]) <= set(after["orders"])
    new_orders = Order.objects.exclude(id__in=[row[0] for row in before["orders"]])
    assert {o.client_id for o in new_orders} == {world["client_x"].id}
    assert before["clients"] == after["clients"] and before["hubs"] == after["hubs"]


def test_lists_hold_only_the_clients_own_orders_and_webhooks(world):
    client = client_for(world["key_x"])
    orders = {o["external_ref"] for o in client.get("/api/v1/orders").json()["results"]}
    assert orders == {world["org"].order.external_ref, "X-ORD-2"}
    subscriptions = [s["id"] for s in client.get("/api/v1/webhook-subscriptions").json()["results"]]
    assert subscriptions == [str(world["subscription_x"].id)]
    deliveries = client.get("/api/v1/webhook-deliveries").json()["results"]
    assert deliveries and {d["subscription_id"] for d in deliveries} == {str(world["subscription_x"].id)}


def test_a_client_caller_cannot_place_an_order_for_another_client(world):
    client = client_for(world["key_x"])
    refused = post(
        client, "/api/v1/orders", order_payload(ref="X-FOR-Y", client_id=str(world["client_y"].id))
    )
    assert refused.status_code == 400
    assert list(error_of(refused)["fields"]) == ["client_id"]
    placed = post(client, "/api/v1/orders", order_payload(ref="X-OWN"))
    assert placed.status_code == 201 and placed.json()["client_id"] == str(world["client_x"].id)


def test_an_organisation_key_names_the_client_and_a_paused_client_takes_no_orders(world, api):
    unknown = post(api, "/api/v1/orders", order_payload(ref="ORG-1", client_id=str(uuid.uuid4())))
    assert unknown.status_code == 400 and list(error_of(unknown)["fields"]) == ["client_id"]
    for_y = post(api, "/api/v1/orders", order_payload(ref="ORG-2", client_id=str(world["client_y"].id)))
    assert for_y.status_code == 201 and for_y.json()["client_id"] == str(world["client_y"].id)
    paused = api.patch(f"/api/v1/clients/{world['client_y'].id}", {"is_active": False}, format="json")
    assert paused.status_code == 200
    refused = post(api, "/api/v1/orders", order_payload(ref="ORG-3", client_id=str(world["client_y"].id)))
    assert refused.status_code == 400 and "paused" in error_of(refused)["fields"]["client_id"][0]


def test_a_client_key_cannot_hold_the_organisations_scopes(org):
    x = create_client(organisation=org, slug="x", name="X")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        create_api_key(organisation=org, name="too-wide", client=x, scopes=["orders:read", "drivers:read"])
    assert "scopes" in refused.value.message_dict


def test_a_client_user_may_not_open_the_live_map(world):
    user = make_user(world["org"].organisation, Role.CLIENT_USER, "x-viewer", client=world["client_x"])
    client = session_client(user)
    assert client.get("/live/").status_code == 403
