"""Tenancy and authentication: another organisation gets nothing, from any endpoint.

The endpoints are read from the DRF router and cross-checked with the URL resolver, so a new
route (or a new method or action on one) fails here until this walk knows how to call it.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from config.urls import driver_router, router
from core.actors import Actor
from core.models import IdempotencyRecord
from dispatch.services.orders import create_order, transition_order
from identity.models import Role
from identity.services import create_api_key, revoke_api_key
from tests.api.conftest import (
    DRIVER_PASSWORD,
    DriverApp,
    OrgData,
    client_for,
    device_client,
    driver_app,
    driver_snapshot,
    error_of,
    session_client,
    snapshot,
)
from tests.conftest import make_active_driver, make_user, order_payload, post
from tests.dispatch.factories import order_input
from tests.onboarding.test_api_tenancy import ONBOARDING_ROUTES
from tests.scorecards.test_api import SCORECARD_ROUTES

SMALL_SQUARE = {
    "type": "Polygon",
    "coordinates": [[[24.94, 60.17], [24.945, 60.17], [24.945, 60.172], [24.94, 60.172], [24.94, 60.17]]],
}
# How to call each writing action with a valid body, so a refusal is about tenancy, not input.
# A route the router gains without an entry here fails test_the_walk_knows_every_route.
BODIES = {
    ("order", "create"): lambda: order_payload(ref=f"B-NEW-{uuid.uuid4().hex[:8]}"),
    ("order", "cancel"): lambda: {"reason": "Probe from another organisation."},
    ("webhook-subscription", "create"): lambda: {
        "url": "https://oms.b.example/new-hooks",
        "event_types": ["order.*"],
    },
    ("webhook-subscription", "partial_update"): lambda: {
        "url": "https://attacker.example/steal",
        "is_active": False,
    },
    ("webhook-delivery", "replay"): lambda: {},
    ("hub", "create"): lambda: {
        "name": f"B hub {uuid.uuid4().hex[:6]}",
        "address": "Street 1",
        "location": {"lat": 60.17, "lon": 24.94},
    },
    ("hub", "partial_update"): lambda: {"name": "Taken over", "is_active": False},
    ("zone", "create"): lambda: {"name": f"B zone {uuid.uuid4().hex[:6]}", "area": SMALL_SQUARE},
    ("zone", "partial_update"): lambda: {"name": "Taken over", "area": SMALL_SQUARE},
    ("client", "create"): lambda: {"slug": f"new-{uuid.uuid4().hex[:6]}", "name": "New Retail"},
    ("client", "partial_update"): lambda: {"name": "Taken over", "is_active": False},
    ("discipline-review", "lift"): lambda: {"reason": "Probe from another organisation."},
    ("discipline-review", "confirm"): lambda: {"reason": "Probe from another organisation."},
    ("traffic-record", "create"): lambda: {
        "source": "b-probe",
        "records": [
            {
                "id": f"probe-{uuid.uuid4().hex[:6]}",
                "type": "speed",
                "h3_cell": "891126d338fffff",
                "factor": 0.8,
                "valid_from": "2030-01-01T00:00:00Z",
                "valid_until": "2030-01-01T01:00:00Z",
            }
        ],
    },
}
WRITE_METHODS = {"POST", "PUT", "PATCH"}
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
# Answers that a list route gives its own organisation's caller; creates are the caller's own.
LIST_STATUS = {"GET": 200, "HEAD": 200, "OPTIONS": 200, "POST": 201}
# /api/ routes outside the router: the schema and its viewer hold no organisation data; the
# onboarding routes are walked by tests/onboarding/test_api_tenancy.py, the scorecards' by
# tests/scorecards/test_api.py.
NON_ROUTER_API_ROUTES = {"schema", "swagger-ui", *ONBOARDING_ROUTES, *SCORECARD_ROUTES}
# /api/v1/ routes outside the router about the caller's organisation as a whole (no id in the
# URL): walked by test_organisation_routes_show_and_change_only_the_callers_own.
ORGANISATION_ROUTES = {
    "dispatch-settings": ["GET", "PUT", "PATCH"],
    "discipline-rules": ["GET", "PUT", "PATCH"],
}


@dataclass(frozen=True)
class Endpoint:
    basename: str
    url_name: str
    detail: bool
    lookup: str
    actions: dict  # HTTP method -> viewset action

    @property
    def methods(self) -> list[str]:
        """Every method the route answers: its actions, HEAD with GET, and OPTIONS."""
        methods = set(self.actions) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return [m for m in ALL_METHODS if m in methods]

    def url(self, object_id=None) -> str:
        return reverse(self.url_name, kwargs={self.lookup: object_id} if self.detail else {})

    def __str__(self) -> str:
        return self.url_name


def router_endpoints(of=router) -> list[Endpoint]:
    endpoints = []
    for _prefix, viewset, basename in of.registry:
        for route in of.get_routes(viewset):
            method_map = of.get_method_map(viewset, route.mapping)
            if not method_map:
                continue
            endpoints.append(
                Endpoint(
                    basename=basename,
                    url_name=route.name.format(basename=basename),
                    detail=route.detail,
                    lookup=viewset.lookup_url_kwarg or viewset.lookup_field,
                    actions={method.upper(): action for method, action in method_map.items()},
                )
            )
    return endpoints


def resolver_routes(patterns=None, prefix: str = ""):
    """(route, name) of every URL pattern in the project."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from resolver_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route.replace("^", ""), pattern.name


def call(client, endpoint: Endpoint, method: str, object_id=None):
    url = endpoint.url(object_id)
    if method in WRITE_METHODS:
        body = BODIES[(endpoint.basename, endpoint.actions[method])]()
        return client.generic(
            method,
            url,
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"tenancy-{uuid.uuid4()}",
        )
    return client.generic(method, url)


def leaked(response, victim: OrgData, sent: str = "") -> list[str]:
    """The victim's strings in the answer, except what the caller sent itself (echoed in errors)."""
    text = response.content.decode(errors="replace")
    return [secret for secret in victim.secrets() if secret != sent and secret in text]


@pytest.fixture(params=["api_key", "session"])
def b_client(request, org_b, org_b_admin):
    """Org B's caller with every scope: its API key, or its org admin signed in."""
    return client_for(org_b.api_key) if request.param == "api_key" else session_client(org_b_admin)


def test_the_walk_knows_every_route():
    endpoints = router_endpoints()
    names = {endpoint.url_name for endpoint in endpoints}
    api_routes = {(route, name) for route, name in resolver_routes() if route.startswith("api/")}
    walked_by_the_driver_walk = {e.url_name for e in driver_endpoints()}
    unknown = sorted(
        f"{route} ({name})"
        for route, name in api_routes
        if name not in names | walked_by_the_driver_walk | set(ORGANISATION_ROUTES)
        and name not in NON_ROUTER_API_ROUTES
    )
    assert not unknown, f"API routes the tenancy walk does not call: {unknown}"
    # Every router route is served under /api/v1/ and has a body for each writing method.
    v1_names = {name for route, name in api_routes if route.startswith("api/v1/")}
    assert names <= v1_names
    missing = sorted(
        f"{endpoint} {method} -> {endpoint.actions[method]}"
        for endpoint in endpoints
        for method in endpoint.methods
        if method in WRITE_METHODS and (endpoint.basename, endpoint.actions[method]) not in BODIES
    )
    assert not missing, f"Teach the tenancy walk (BODIES) how to call: {missing}"
    # The six resources of the issue are all there, with their actions.
    assert {e.basename for e in endpoints} == {
        "order",
        "driver",
        "hub",
        "zone",
        "webhook-subscription",
        "webhook-delivery",
        "client",
        "traffic-record",
        "invoice",
        "discipline-review",
    }
    assert {"order-cancel", "webhook-delivery-replay"} <= names


def test_every_endpoint_refuses_another_organisations_data(org_a, org_b, b_client):
    before = snapshot(org_a.organisation)
    b_before = snapshot(org_b.organisation)
    problems = []
    calls = 0
    for endpoint in router_endpoints():
        # Its own caller may use the route, so the refusals below are about tenancy.
        if endpoint.detail and "GET" in endpoint.actions:
            own = b_client.get(endpoint.url(org_b.ids()[endpoint.basename]))
            if own.status_code != 200:
                problems.append(f"{endpoint} GET own object: {own.status_code}")
        object_id = org_a.ids()[endpoint.basename] if endpoint.detail else None
        allow = b_client.options(endpoint.url(object_id))["Allow"]
        allowed = {method.strip() for method in allow.split(",")}
        if allowed != set(endpoint.methods):
            problems.append(
                f"{endpoint}: the view allows {sorted(allowed)}, the walk calls {endpoint.methods}"
            )
        for method in endpoint.methods:
            response = call(b_client, endpoint, method, object_id)
            calls += 1
            where = f"{method} {endpoint.url(object_id)}"
            if leaked(response, org_a):
                problems.append(f"{where} leaked {leaked(response, org_a)}")
            if endpoint.detail:
                expected = {200} if method == "OPTIONS" else {403, 404}
            else:
                expected = {LIST_STATUS.get(method)}
            if response.status_code not in expected:
                problems.append(f"{where}: {response.status_code}, expected {sorted(expected)}")
                continue
            if response.status_code in (403, 404) and method != "HEAD":
                error_of(response)
            if method == "GET" and not endpoint.detail:
                ids = [row["id"] for row in response.json()["results"]]
                if org_b.ids()[endpoint.basename] not in ids:
                    problems.append(f"{where}: B's own row is missing from {ids}")
    assert not problems, "\n".join(problems)
    assert calls >= 20
    assert snapshot(org_a.organisation) == before
    # B's requests went through: it wrote only its own rows.
    b_after = snapshot(org_b.organisation)
    assert len(b_after["orders"]) == len(b_before["orders"]) + 1
    assert len(b_after["subscriptions"]) == len(b_before["subscriptions"]) + 1


def test_organisation_routes_show_and_change_only_the_callers_own(org_a, org_b, b_client):
    """B's caller reads and writes B's dispatch settings and discipline rules; A's stay as
    they were, unseen."""
    from discipline.models import RuleSet
    from discipline.services import update_rules
    from dispatch.models import DispatchSettings
    from dispatch.services.dispatch_settings import update_dispatch_settings

    a_rules = {"max_pickup_distance_m": 1234, "k_nearest": 7}
    update_dispatch_settings(organisation=org_a.organisation, rules=a_rules, actor=Actor.system("t"))
    a_discipline = {
        "a_private_rule": {"metric": "on_time_rate", "threshold": 55, "over_last": 987, "action": "WARN"}
    }
    update_rules(organisation=org_a.organisation, rules=a_discipline, actor=Actor.system("t"))
    bodies = {
        "dispatch-settings": {
            "PUT": {"rules": {"k_nearest": 5}, "offer_ttl_seconds": 60},
            "PATCH": {"rules": {"mode": "broadcast"}},
        },
        "discipline-rules": {
            "PUT": {"rules": {"late": {"metric": "consecutive_late", "threshold": 4, "action": "WARN"}}},
            "PATCH": {"rules": {"late": {"threshold": 5}}},
        },
    }
    for name, methods in ORGANISATION_ROUTES.items():
        url = reverse(name)
        allowed = {m.strip() for m in b_client.options(url)["Allow"].split(",")}
        assert allowed == {*methods, "HEAD", "OPTIONS"}
        for method in methods:
            body = bodies[name].get(method, {})
            response = b_client.generic(method, url, data=json.dumps(body), content_type="application/json")
            assert response.status_code == 200, (method, response.content)
            assert "1234" not in response.content.decode()
            assert "a_private_rule" not in response.content.decode()
    a_row = DispatchSettings.objects.get(organisation=org_a.organisation)
    assert (a_row.rules, a_row.offer_ttl_seconds) == (a_rules, 45)
    b_row = DispatchSettings.objects.get(organisation=org_b.organisation)
    assert (b_row.rules, b_row.offer_ttl_seconds) == ({"k_nearest": 5, "mode": "broadcast"}, 60)
    assert (
        RuleSet.objects.filter(organisation=org_a.organisation).first().rules["a_private_rule"]["over_last"]
        == 987
    )
    b_discipline = RuleSet.objects.filter(organisation=org_b.organisation).first().rules
    assert list(b_discipline) == ["late"] and b_discipline["late"]["threshold"] == 5


def test_organisation_routes_refuse_client_keys_drivers_and_strangers(org, org_a, driver_world):
    from rest_framework.test import APIClient

    from identity.models import Client

    shop = Client.objects.create(organisation=org, slug="shop", name="Shop")
    callers = {
        "client key": client_for(create_api_key(organisation=org, name="shop-oms", client=shop)),
        "client user": session_client(make_user(org, Role.CLIENT_USER, "shop-user", client=shop)),
        "driver": session_client(driver_world[0]),
        "key without dispatch or discipline scopes": client_for(
            create_api_key(organisation=org, name="reader", scopes=["orders:read"])
        ),
    }
    for name in ORGANISATION_ROUTES:
        url = reverse(name)
        for who, client in callers.items():
            for method in ORGANISATION_ROUTES[name]:
                response = client.generic(method, url, data="{}", content_type="application/json")
                assert response.status_code == 403, (who, method, response.status_code)
                error_of(response)
        assert APIClient().get(url).status_code == 401


def test_filters_do_not_tell_whether_another_organisations_ids_exist(org_a, org_b):
    """A filter given A's id answers as it does for an id that exists nowhere: no oracle."""
    client = client_for(org_b.api_key)
    # Each of A's ids and references, and a value of the same shape that exists nowhere.
    probes = [(value, str(uuid.uuid4())) for value in org_a.ids().values()]
    probes.append((org_a.order.external_ref, "NOWHERE-1"))
    problems = []
    for endpoint in router_endpoints():
        if endpoint.detail or "GET" not in endpoint.actions:
            continue
        viewset = {basename: viewset for _p, viewset, basename in router.registry}[endpoint.basename]
        filterset = getattr(viewset, "filterset_class", None)
        names = list(filterset.base_filters) if filterset else list(getattr(viewset, "filterset_fields", []))
        for name in names:
            for probe, nowhere in probes:
                baseline = client.get(endpoint.url(), {name: nowhere})
                response = client.get(endpoint.url(), {name: probe})
                if response.status_code != baseline.status_code:
                    problems.append(
                        f"{endpoint} ?{name}={probe}: {response.status_code}, "
                        f"but {baseline.status_code} for {nowhere}, which exists nowhere"
                    )
                if leaked(response, org_a, sent=probe):
                    problems.append(f"{endpoint} ?{name}={probe} leaked {leaked(response, org_a, probe)}")
    assert not problems, "\n".join(problems)


def test_an_order_cannot_point_at_another_organisations_hub(org_a, org_b):
    before = snapshot(org_a.organisation)
    response = post(
        client_for(org_b.api_key), "/api/v1/orders", order_payload(ref="B-X", hub_id=str(org_a.hub.id))
    )
    assert response.status_code == 400
    assert "hub_id" in error_of(response)["fields"]
    assert snapshot(org_a.organisation) == before


def test_methods_a_route_does_not_take_are_refused_with_405(org_b):
    client = client_for(org_b.api_key)
    problems = []
    for endpoint in router_endpoints():
        object_id = org_b.ids()[endpoint.basename] if endpoint.detail else None
        for method in set(ALL_METHODS) - set(endpoint.methods):
            response = client.generic(
                method,
                endpoint.url(object_id),
                data="{}",
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"m-{uuid.uuid4()}",
            )
            if response.status_code != 405 or (
                method != "HEAD" and error_of(response)["code"] != "method_not_allowed"
            ):
                problems.append(f"{method} {endpoint}: {response.status_code}")
    assert not problems, "\n".join(problems)
    # Nothing was claimed for requests that no handler ran.
    assert not IdempotencyRecord.objects.filter(state=IdempotencyRecord.State.IN_PROGRESS).exists()


# --- roles ---------------------------------------------------------------------------------


@pytest.fixture
def driver_world(org):
    """Two drivers of one organisation, one signed in, with an order each and one unassigned."""
    from fleet import services as fleet_services

    system = Actor.system("test-matching")
    user = make_user(org, Role.DRIVER, "driver-one")
    me = make_active_driver(org, name="Me", phone="+358401000101", plate="ME-101")
    fleet_services.Driver.objects.filter(id=me.id).update(user=user)
    colleague = make_active_driver(org, name="Colleague", phone="+358401000102", plate="CO-102")
    orders = {}
    for ref, driver in (("MINE", me), ("THEIRS", colleague), ("POOL", None)):
        order = create_order(organisation=org, actor=system, data=order_input(order_payload(ref=ref)))
        if driver is not None:
            transition_order(
                order_id=order.id, organisation=org, action="assign", actor=system, driver=driver
            )
        orders[ref] = order
    return user, me, colleague, orders


def test_a_driver_sees_only_their_own_record_and_their_own_orders(driver_world):
    user, me, colleague, orders = driver_world
    client = session_client(user)
    drivers = client.get("/api/v1/drivers").json()["results"]
    assert [d["id"] for d in drivers] == [str(me.id)]
    assert client.get(f"/api/v1/drivers/{me.id}").status_code == 200
    assert client.get(f"/api/v1/drivers/{colleague.id}").status_code == 404
    listed = client.get("/api/v1/orders").json()["results"]
    assert [o["external_ref"] for o in listed] == ["MINE"]
    assert client.get(f"/api/v1/orders/{orders['MINE'].id}").status_code == 200
    for ref in ("THEIRS", "POOL"):
        assert client.get(f"/api/v1/orders/{orders[ref].id}").status_code == 404
    # A driver's role reads; it neither writes orders nor reads the fleet or webhooks.
    refused = post(client, "/api/v1/orders", order_payload(ref="BY-DRIVER"))
    assert refused.status_code == 403
    assert "orders:write" in error_of(refused)["message"]
    cancel = post(client, f"/api/v1/orders/{orders['MINE'].id}/cancel", {"reason": "No."})
    assert cancel.status_code == 403
    for url in ("/api/v1/hubs", "/api/v1/zones", "/api/v1/webhook-subscriptions"):
        assert client.get(url).status_code == 403, url
    assert {o.external_ref for o in orders.values()} == {"MINE", "THEIRS", "POOL"}


def test_a_dispatcher_sees_all_of_their_organisation_and_nothing_else(driver_world, dispatcher, org_b):
    _user, me, colleague, _orders = driver_world
    client = session_client(dispatcher)
    drivers = {d["id"] for d in client.get("/api/v1/drivers").json()["results"]}
    assert drivers == {str(me.id), str(colleague.id)}
    listed = {o["external_ref"] for o in client.get("/api/v1/orders").json()["results"]}
    assert listed == {"MINE", "THEIRS", "POOL"}
    assert client.get(f"/api/v1/orders/{org_b.order.id}").status_code == 404
    assert client.get(f"/api/v1/drivers/{org_b.driver.id}").status_code == 404
    # Dispatchers do not manage webhooks (org admins and API keys with the scope do).
    assert client.get("/api/v1/webhook-subscriptions").status_code == 403


def test_platform_staff_without_an_organisation_are_refused(org_a, db):
    from identity.models import User

    staff = User.objects.create_user(
        username="staff", password="pw-123456-x", organisation=None, role=Role.PLATFORM_STAFF, is_staff=True
    )
    client = session_client(staff)
    for endpoint in router_endpoints():
        url = endpoint.url(org_a.ids()[endpoint.basename]) if endpoint.detail else endpoint.url()
        response = client.get(url) if "GET" in endpoint.actions else post(client, url, {})
        assert response.status_code == 403, url
        assert not leaked(response, org_a)
        error_of(response)


def test_anonymous_callers_get_401_from_every_endpoint(org_a):
    from rest_framework.test import APIClient

    client = APIClient()
    for endpoint in router_endpoints():
        url = endpoint.url(org_a.ids()[endpoint.basename]) if endpoint.detail else endpoint.url()
        response = client.get(url) if "GET" in endpoint.actions else post(client, url, {})
        assert response.status_code == 401, url
        assert error_of(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Bearer"
        assert not leaked(response, org_a)


def test_a_key_without_orders_write_cannot_create_or_cancel(org, org_a):
    reader = client_for(create_api_key(organisation=org, name="reader", scopes=["orders:read"]))
    before = snapshot(org)
    assert reader.get("/api/v1/orders").status_code == 200
    response = post(reader, "/api/v1/orders", order_payload(ref="NOPE"))
    assert response.status_code == 403
    assert error_of(response)["message"] == "This requires the 'orders:write' scope."
    cancel = post(reader, f"/api/v1/orders/{org_a.order.id}/cancel", {"reason": "Should not work."})
    assert cancel.status_code == 403
    # Nor does it read what its scopes do not name.
    assert reader.get("/api/v1/drivers").status_code == 403
    assert reader.get("/api/v1/webhook-subscriptions").status_code == 403
    assert snapshot(org) == before


def test_a_revoked_key_gets_401(org, api_key):
    client = client_for(api_key)
    assert client.get("/api/v1/orders").status_code == 200
    revoke_api_key(api_key=api_key.api_key)
    response = client.get("/api/v1/orders")
    assert response.status_code == 401
    assert error_of(response) == {
        "code": "authentication_failed",
        "message": "This API key has been revoked.",
    }
    assert post(client, "/api/v1/orders", order_payload(ref="AFTER-REVOKE")).status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Token frk_abc_def",
        "Basic dXNlcjpwYXNz",
        "bearer frk_abc_def",
        "Bearer frk_abc_def extra",
        "Bearer not-a-fleetroot-key",
        "Bearer frk_nounderscore",
        "Bearer frk_000000000000_wrong-secret",
        "Bearer frk__",
        "Bearer fr\u00e9k_x_y",
    ],
)
def test_a_malformed_or_wrong_authorization_header_gets_401_json(api_key, header):
    from rest_framework.test import APIClient

    client = APIClient()
    response = client.get("/api/v1/orders", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_right_prefix_with_a_wrong_secret_is_refused(api_key):
    from rest_framework.test import APIClient

    prefix = api_key.api_key.prefix
    client = APIClient()
    response = client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer frk_{prefix}_guessed-secret")
    assert response.status_code == 401
    assert error_of(response)["message"] == "Invalid API key."


def test_session_writes_need_the_csrf_token(dispatcher):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(dispatcher)
    assert client.get("/api/v1/orders").status_code == 200
    response = post(client, "/api/v1/orders", order_payload(ref="CSRF"))
    assert response.status_code == 403
    assert "CSRF" in error_of(response)["message"]


# --- the driver app: a driver sees and moves only their own work ----------------------------

# Routes of /api/v1/driver/ outside its router: the driver themself.
DRIVER_SELF_ROUTES = {
    "driver-me": {"GET": "get"},
    "driver-route": {"GET": "get"},
    # Before going offline: pings are taken from an online driver only.
    "driver-pings": {"POST": "post"},
    "driver-online": {"POST": "post"},
    "driver-offline": {"POST": "post"},
    "driver-earnings": {"GET": "get"},
    "driver-balance": {"GET": "get"},
    "driver-cashout-quote": {"POST": "post"},
    "driver-cashout-confirm": {"POST": "post"},
    "driver-disputes": {"GET": "get", "POST": "post"},
    "driver-statement": {"GET": "get"},
    "driver-payout-onboarding": {"POST": "post"},
    "driver-scorecard": {"GET": "get"},
}
# Bodies by (route, action); a callable gets the driver whose work is probed (another driver's
# quote or earning, named in the body, must be refused as not the caller's).
DRIVER_BODIES = {
    ("driver-offer", "decline"): {"reason": "Probe."},
    ("driver-decision", "appeal"): {"text": "Probe: this is not my decision."},
    ("driver-order", "fail"): {"reason": "Probe."},
    # At the victims' pickup (order_payload's), so a geofence would move their order if a
    # ping reached it; it must move the caller's own only.
    ("driver-pings", "post"): lambda victim: {
        "pings": [
            {
                "lat": 60.169,
                "lon": 24.941,
                "accuracy_m": 3,
                "recorded_at": (timezone.now() - timedelta(seconds=s)).isoformat(),
            }
            for s in (30, 15, 0)
        ]
    },
    ("driver-cashout-quote", "post"): {"amount_minor": 60},
    ("driver-cashout-confirm", "post"): lambda victim: {"quote_id": str(victim.quote.id)},
    ("driver-disputes", "post"): lambda victim: {"earning_id": str(victim.earning.id), "kind": "missing_tip"},
    ("driver-payout-onboarding", "post"): {
        "refresh_url": "https://app.example/refresh",
        "return_url": "https://app.example/done",
    },
}
# What a self route answers the caller when the body names another driver's row (or, for a
# quote, the caller's own balance, from which the probe may take a quote).
DRIVER_SELF_EXPECTED = {
    ("driver-cashout-quote", "POST"): {201},
    ("driver-cashout-confirm", "POST"): {400},
    ("driver-disputes", "POST"): {400},
}


def driver_endpoints() -> list[Endpoint]:
    own = [
        Endpoint(basename=name, url_name=name, detail=False, lookup="pk", actions=actions)
        for name, actions in DRIVER_SELF_ROUTES.items()
    ]
    return [*own, *router_endpoints(driver_router)]


@pytest.fixture
def drivers(org, other_org) -> tuple[DriverApp, DriverApp, DriverApp]:
    """Two drivers of one organisation and one of another, each with their own work."""
    return (
        driver_app(org, "A", "+358401000301"),
        driver_app(org, "B", "+358401000302"),
        driver_app(other_org, "X", "+358402000301"),
    )


def call_as_driver(client, endpoint: Endpoint, method: str, object_id, caller: DriverApp, victim=None):
    url = endpoint.url(object_id)
    if method not in WRITE_METHODS:
        return client.generic(method, url)
    if endpoint.basename == "driver-device" and not endpoint.detail:
        body = {"username": caller.user.username, "password": DRIVER_PASSWORD, "name": "Second phone"}
    else:
        body = DRIVER_BODIES.get((endpoint.basename, endpoint.actions[method]), {})
        if callable(body):
            body = body(victim or caller)
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"driver-walk-{uuid.uuid4()}")


@pytest.mark.parametrize("signed_in_by", ["device", "session"])
def test_a_driver_reaches_only_their_own_work_on_every_driver_route(drivers, signed_in_by):
    victim, caller, elsewhere = drivers
    client = device_client(caller.device) if signed_in_by == "device" else session_client(caller.user)
    before = [driver_snapshot(victim), driver_snapshot(elsewhere)]
    problems = []
    for endpoint in driver_endpoints():
        if endpoint.detail and "GET" in endpoint.actions:
            own = client.get(endpoint.url(caller.ids()[endpoint.basename]))
            if own.status_code != 200:
                problems.append(f"{endpoint} GET own: {own.status_code}")
        for victim_app in (victim, elsewhere):
            object_id = victim_app.ids()[endpoint.basename] if endpoint.detail else None
            for method in endpoint.methods:
                response = call_as_driver(client, endpoint, method, object_id, caller, victim_app)
                where = f"{method} {endpoint.url(object_id)}"
                if endpoint.detail:
                    expected = {200} if method == "OPTIONS" else {404}
                elif (endpoint.url_name, method) in DRIVER_SELF_EXPECTED:
                    expected = DRIVER_SELF_EXPECTED[(endpoint.url_name, method)]
                else:
                    expected = (
                        {201} if endpoint.url_name == "driver-device-list" and method == "POST" else {200}
                    )
                if response.status_code not in expected:
                    problems.append(f"{where}: {response.status_code}, expected {sorted(expected)}")
                text = response.content.decode(errors="replace")
                shown = [secret for secret in victim_app.secrets() if secret in text]
                if shown:
                    problems.append(f"{where} showed {shown}")
                if response.status_code == 404 and method != "HEAD":
                    error_of(response)
    assert not problems, "\n".join(problems)
    assert [driver_snapshot(victim), driver_snapshot(elsewhere)] == before
    # The caller's own lists hold their own work.
    offers = client.get("/api/v1/driver/offers").json()
    assert offers[0]["id"] == caller.ids()["driver-offer"]  # pending first
    assert {o["id"] for o in offers} == {str(o.id) for o in caller.driver.offers.all()}
    orders = client.get("/api/v1/driver/orders").json()
    assert [o["id"] for o in orders] == [caller.ids()["driver-order"]]
    stops = client.get("/api/v1/driver/route").json()["stops"]
    assert {s["order_id"] for s in stops} == {caller.ids()["driver-order"]}
    suggestions = client.get("/api/v1/driver/reposition-suggestions").json()
    assert [s["id"] for s in suggestions] == [caller.ids()["driver-reposition"]]
    decisions = client.get("/api/v1/driver/decisions").json()
    assert [d["id"] for d in decisions] == [caller.ids()["driver-decision"]]


def test_the_driver_routes_are_only_for_drivers(drivers, dispatcher, org_admin):
    from rest_framework.test import APIClient

    victim = drivers[0]
    before = driver_snapshot(victim)
    for who, client, code in (
        ("anonymous", APIClient(), 401),
        ("dispatcher", session_client(dispatcher), 403),
        ("org admin", session_client(org_admin), 403),
        ("API key", client_for(create_api_key(organisation=victim.driver.organisation, name="k")), 401),
    ):
        for endpoint in driver_endpoints():
            if endpoint.url_name == "driver-device-list":
                continue  # signing in takes a password, not a session: its own tests
            object_id = victim.ids()[endpoint.basename] if endpoint.detail else None
            method = "GET" if "GET" in endpoint.actions else next(iter(endpoint.actions))
            response = call_as_driver(client, endpoint, method, object_id, victim)
            assert response.status_code == code, f"{who} {method} {endpoint}: {response.status_code}"
            error_of(response)
    assert driver_snapshot(victim) == before
