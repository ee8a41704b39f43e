"""seed_demo: the Helsinki demo city, complete, reproducible and safe to run twice."""

import json
import random
import re
import stat

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from rest_framework.test import APIClient

from core.actors import Actor
from demo import city
from demo.seed import API_KEY_NAME, plan_drivers, seed_demo_city
from dispatch.engine.geo import haversine_m
from dispatch.models import Order, ProofOfDelivery
from fleet.models import Driver, DriverStatus, Hub, Vehicle, Zone
from identity.models import ApiKey, Client, DeviceToken, Organisation, Role, User
from tests.conftest import order_payload, post


@pytest.fixture(scope="module")
def graph():
    return city.city_graph()


def api_client(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_seeds_a_working_city(db, graph):
    result = seed_demo_city(graph=graph, password="demo-pass-123")
    org = result.organisation
    assert (org.slug, org.name, org.currency) == ("helsinki-demo", "Helsinki Demo Deliveries", "EUR")

    drivers = list(Driver.objects.filter(organisation=org).prefetch_related("vehicles"))
    assert len(drivers) == 50
    # Ready to work, where they were last seen; they go online from their phones (the simulator).
    assert all(d.status == DriverStatus.ACTIVE and not d.is_online and d.last_location for d in drivers)
    assert all(d.user and d.user.role == Role.DRIVER and not d.user.has_usable_password() for d in drivers)
    assert set(result.device_tokens) == {str(d.id) for d in drivers} and result.device_tokens_created == 50
    phone = APIClient()
    some = drivers[7]
    phone.credentials(HTTP_AUTHORIZATION=f"Device {result.device_tokens[str(some.id)]}")
    assert phone.get("/api/v1/driver/me").json()["id"] == str(some.id)
    assert len({d.phone for d in drivers}) == 50
    assert all(re.fullmatch(r"\+35840\d{7}", d.phone) for d in drivers)
    assert {d.fleet_type for d in drivers} == {"owned", "gig"}
    vehicles = [v for d in drivers for v in d.vehicles.all()]
    assert len(vehicles) == 50 and all(v.is_active for v in vehicles)
    assert {v.type for v in vehicles} >= {"bicycle", "cargo_bike", "scooter", "car"}
    for v in vehicles:
        motorised = v.type not in ("bicycle", "cargo_bike")
        assert bool(v.plate) == motorised
    # Everyone stands on a real street node of the extract.
    for d in drivers:
        node = graph.nearest(d.last_location.y, d.last_location.x)
        assert haversine_m(d.last_location.y, d.last_location.x, *graph.point(node)) < 1

    hubs = Hub.objects.filter(organisation=org)
    assert hubs.count() == 4
    for hub in hubs:
        node = graph.nearest(hub.location.y, hub.location.x)
        assert haversine_m(hub.location.y, hub.location.x, *graph.point(node)) < 1
        assert re.fullmatch(r".+ \d+", hub.address)

    zones = Zone.objects.filter(organisation=org)
    assert zones.count() == 4
    assert all(z.h3_resolution == 9 and z.h3_cells for z in zones)
    all_cells = [c for z in zones for c in z.h3_cells]
    assert len(all_cells) == len(set(all_cells))  # quadrants do not overlap
    assert all(d.home_zone_id and d.hub_id for d in drivers)
    for d in drivers:
        assert d.home_zone.area.covers(d.last_location)

    admin, dispatcher, staff = (User.objects.get(username=u) for u in ("admin", "dispatcher", "staff"))
    assert (admin.role, admin.organisation) == (Role.ORG_ADMIN, org)
    assert (dispatcher.role, dispatcher.organisation) == (Role.DISPATCHER, org)
    assert staff.role == Role.PLATFORM_STAFF and staff.organisation is None
    assert staff.is_superuser and staff.is_staff and not admin.is_staff
    assert all(u.check_password("demo-pass-123") for u in (admin, dispatcher, staff))

    response = api_client(result.api_key_plaintext).get("/api/v1/drivers")
    assert response.status_code == 200
    assert ApiKey.objects.get(organisation=org, revoked_at=None).name == API_KEY_NAME


def test_running_twice_duplicates_nothing_and_keeps_a_valid_key(db, graph):
    first = seed_demo_city(graph=graph, driver_count=12)

    def counts():
        return [m.objects.count() for m in (Organisation, Client, User, Hub, Zone, Driver, Vehicle, ApiKey)]

    before = counts()
    positions = {d.id: d.last_location.coords for d in Driver.objects.all()}
    second = seed_demo_city(graph=graph, driver_count=12, existing_api_key=first.api_key_plaintext)
    assert counts() == before
    assert first.created["clients"] == 2
    assert second.created == dict.fromkeys(
        ("organisation", "clients", "users", "hubs", "zones", "drivers"), 0
    )
    assert not second.api_key_created and second.api_key_plaintext == first.api_key_plaintext
    assert {d.id: d.last_location.coords for d in Driver.objects.all()} == positions
    # New random passwords each run, and the printed ones work.
    assert second.passwords["admin"] != first.passwords["admin"]
    assert User.objects.get(username="admin").check_password(second.passwords["admin"])


def test_a_lost_or_stale_key_is_replaced_and_the_old_one_revoked(db, graph):
    first = seed_demo_city(graph=graph, driver_count=3)
    second = seed_demo_city(graph=graph, driver_count=3, existing_api_key="frk_nope_nope")
    assert second.api_key_created and second.api_key_plaintext != first.api_key_plaintext
    assert api_client(first.api_key_plaintext).get("/api/v1/drivers").status_code == 401
    assert api_client(second.api_key_plaintext).get("/api/v1/drivers").status_code == 200
    assert ApiKey.objects.filter(name=API_KEY_NAME, revoked_at=None).count() == 1


def test_couriers_keep_their_phones_across_runs_and_a_lost_one_is_replaced(db, graph):
    first = seed_demo_city(graph=graph, driver_count=3)
    tokens = dict(first.device_tokens)
    lost = next(iter(tokens))
    second = seed_demo_city(graph=graph, driver_count=3, existing_device_tokens={**tokens, lost: "frd_x_y"})
    assert second.device_tokens_created == 1
    assert {k: v for k, v in second.device_tokens.items() if k != lost} == {
        k: v for k, v in tokens.items() if k != lost
    }
    assert second.device_tokens[lost] != tokens[lost]
    assert DeviceToken.objects.filter(user__driver__id=lost, revoked_at=None).count() == 1
    for token, code in ((tokens[lost], 401), (second.device_tokens[lost], 200)):
        phone = APIClient()
        phone.credentials(HTTP_AUTHORIZATION=f"Device {token}")
        assert phone.get("/api/v1/driver/me").status_code == code


def test_reset_wipes_the_demo_organisation_even_with_delivered_orders(db, graph):
    from core.geo import make_point
    from dispatch.services.orders import deliver_order, transition_order

    first = seed_demo_city(graph=graph, driver_count=3)
    org = first.organisation
    response = post(api_client(first.api_key_plaintext), "/api/v1/orders", order_payload())
    assert response.status_code == 201, response.json()
    order_id, driver = response.json()["id"], Driver.objects.filter(organisation=org).first()
    actor = Actor.system("test")
    transition_order(order_id=order_id, organisation=org, action="assign", actor=actor, driver=driver)
    for action in ("start_pickup", "arrive_pickup", "pick_up", "arrive_dropoff"):
        transition_order(order_id=order_id, organisation=org, action=action, actor=actor)
    from django.core.files.base import ContentFile

    from demo.simulator import signature_png

    deliver_order(
        order_id=order_id,
        organisation=org,
        driver=driver,
        actor=actor,
        location=make_point(lat=60.1655, lon=24.938),
        captured_at=driver.last_seen_at,
        signature=ContentFile(signature_png(random.Random(1)), name="s.png"),
    )
    assert ProofOfDelivery.objects.count() == 1

    second = seed_demo_city(graph=graph, driver_count=3, reset=True)
    assert second.organisation.id != org.id
    assert not Organisation.objects.filter(id=org.id).exists()
    assert Order.objects.count() == ProofOfDelivery.objects.count() == 0
    assert Driver.objects.count() == 3
    assert User.objects.filter(username="staff").count() == 1


def test_refuses_to_take_over_a_user_of_another_organisation(db, graph):
    other = Organisation.objects.create(slug="other", name="Other")
    User.objects.create_user(username="admin", password="x-123456-y", organisation=other, role=Role.ORG_ADMIN)
    with pytest.raises(ValidationError, match="outside the demo"):
        seed_demo_city(graph=graph, driver_count=2)
    assert not Organisation.objects.filter(slug=city.ORG_SLUG).exists()  # all or nothing


def test_the_city_is_reproducible(graph):
    first = plan_drivers(graph=graph, count=20, rng=random.Random(5))
    assert first == plan_drivers(graph=graph, count=20, rng=random.Random(5))
    assert first != plan_drivers(graph=graph, count=20, rng=random.Random(6))


def test_command_writes_the_key_file_owner_only_and_prints_logins(db, tmp_path, capsys):
    key_file = tmp_path / "var" / "demo-api-key"
    devices_file = tmp_path / "var" / "demo-devices.json"
    files = ["--api-key-file", str(key_file), "--devices-file", str(devices_file)]
    call_command("seed_demo", "--drivers", "4", *files)
    out = capsys.readouterr().out
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(devices_file.stat().st_mode) == 0o600
    phones = json.loads(devices_file.read_text())
    assert len(phones) == 4 and all(token.startswith("frd_") for token in phones.values())
    assert "4 device tokens (4 new)" in out and not any(token in out for token in phones.values())
    assert key in out and "admin" in out and "dispatcher" in out and "staff" in out
    assert api_client(key).get("/api/v1/drivers").status_code == 200

    call_command("seed_demo", "--drivers", "4", *files)
    out = capsys.readouterr().out
    assert key_file.read_text().strip() == key and key not in out
    assert json.loads(devices_file.read_text()) == phones and "(0 new)" in out
    assert Driver.objects.count() == 4

    call_command("seed_demo", "--drivers", "4", *files, "--reset", "--password", "pw-x-12345")
    assert key_file.read_text().strip() != key
    assert User.objects.get(username="dispatcher").check_password("pw-x-12345")
