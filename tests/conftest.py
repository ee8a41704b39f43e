"""Shared fixtures: two organisations with their people, keys and data, for tenancy tests."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.gis.geos import Polygon
from rest_framework.test import APIClient

from core.actors import Actor
from fleet import services as fleet_services
from fleet.models import Hub
from identity.models import Organisation, Role, User
from identity.services import create_api_key

HELSINKI = {"lat": 60.1699, "lon": 24.9384}


@pytest.fixture
def org(db):
    return Organisation.objects.create(slug="acme", name="Acme Logistics", currency="EUR")


@pytest.fixture
def other_org(db):
    return Organisation.objects.create(slug="globex", name="Globex Retail", currency="EUR")


def make_user(organisation, role, username, client=None):
    return User.objects.create_user(
        username=username, password="pw-123456-x", organisation=organisation, role=role, client=client
    )


@pytest.fixture
def dispatcher(org):
    return make_user(org, Role.DISPATCHER, "dispatcher")


@pytest.fixture
def org_admin(org):
    return make_user(org, Role.ORG_ADMIN, "orgadmin")


@pytest.fixture
def staff_user(db):
    return User.objects.create_superuser(username="staff", password="pw-123456-x", email="s@example.com")


@pytest.fixture
def staff_client(client, staff_user):
    """The Django test client signed in as platform staff (a superuser)."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def api_key(org):
    return create_api_key(organisation=org, name="oms")


@pytest.fixture
def other_api_key(other_org):
    return create_api_key(organisation=other_org, name="other-oms")


def client_for_key(issued):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


@pytest.fixture
def api(api_key):
    return client_for_key(api_key)


@pytest.fixture
def other_api(other_api_key):
    return client_for_key(other_api_key)


def admin_form_data(response, **overrides) -> dict:
    """The POST body that submits an admin change page's form (and empty inlines) unchanged."""
    from django import forms
    from django.contrib.gis.geos import GEOSGeometry

    data = {}
    for bound in response.context["adminform"].form:
        value = bound.value()
        if isinstance(bound.field.widget, forms.MultiWidget):
            for index, part in enumerate(bound.field.widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else part
        elif isinstance(value, GEOSGeometry):
            data[bound.html_name] = value.ewkt
        elif value not in (None, False):
            data[bound.html_name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management[name].html_name: "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS")})
    data.update(overrides)
    return data


def make_hub(organisation, name="Central hub"):
    from core.geo import make_point

    return Hub.objects.create(
        organisation=organisation,
        name=name,
        address="Mannerheimintie 1",
        location=make_point(**HELSINKI),
    )


def make_zone(organisation, name="Kluuvi"):
    area = Polygon.from_bbox((24.935, 60.164, 24.953, 60.179))
    area.srid = 4326
    return fleet_services.create_zone(organisation=organisation, name=name, area=area)


def make_active_driver(
    organisation, name="Driver One", phone="+358401000001", vehicle="car", plate="ABC-123", user=None
):
    driver = fleet_services.create_driver(
        user=user,
        organisation=organisation,
        name=name,
        phone=phone,
        fleet_type="gig",
        vehicle_type=vehicle,
        plate=plate if vehicle not in ("bicycle", "cargo_bike") else "",
        actor=Actor.system("test-onboarding"),
    )
    fleet_services.change_driver_status(
        driver_id=driver.id,
        organisation=organisation,
        action="approve",
        actor=Actor.system("test-onboarding"),
        reason="All checks passed.",
    )
    driver.refresh_from_db()
    return driver


def order_payload(ref="ORD-1", **overrides):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    body = {
        "external_ref": ref,
        "pickup": {
            "address": "Aleksanterinkatu 52",
            "lat": 60.1690,
            "lon": 24.9410,
            "window": {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()},
        },
        "dropoff": {
            "address": "Bulevardi 10",
            "lat": 60.1655,
            "lon": 24.9380,
            "window": {
                "start": (start + timedelta(minutes=15)).isoformat(),
                "end": (start + timedelta(minutes=90)).isoformat(),
            },
        },
        "weight_kg": "2.50",
        "volume_litres": "10",
        "declared_value_minor": 4999,
        "tip_minor": 200,
        "priority": "normal",
        "recipient": {"name": "Maija Meikäläinen", "phone": "+358401234567"},
        "notes": "Ring twice",
    }
    body.update(overrides)
    return body


_keys = iter(range(10**9))


def post(client, url, body, key=None, **extra):
    """POST JSON with a fresh Idempotency-Key unless one is given."""
    key = key or f"test-key-{next(_keys)}"
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)
