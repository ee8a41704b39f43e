"""Driver status decisions, going online, pings, zones and the constraints behind them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.exceptions import InvalidTransition
from core.models import DomainEvent
from fleet import services
from fleet.models import Driver, DriverStatus, LocationPing, Vehicle
from tests.conftest import make_active_driver, make_zone

RULE = Actor.system("three-late-deliveries")


def test_a_decision_is_stored_with_inputs_reason_and_event(org):
    driver = make_active_driver(org)
    change = services.change_driver_status(
        driver_id=driver.id,
        organisation=org,
        action="suspend",
        actor=RULE,
        reason="Three deliveries in a row were late.",
        inputs={"late_orders": ["A", "B", "C"]},
    )
    driver.refresh_from_db()
    assert driver.status == DriverStatus.SUSPENDED and not driver.is_online
    assert change.inputs == {"late_orders": ["A", "B", "C"]}
    assert change.actor_type == "system" and change.actor_label == "three-late-deliveries"
    event = DomainEvent.objects.get(event_type="driver.status_changed", payload__status="SUSPENDED")
    assert event.reason == "Three deliveries in a row were late."
    assert event.payload["from_status"] == "ACTIVE"


def test_decisions_need_a_reason_and_a_legal_step(org):
    driver = make_active_driver(org)
    with pytest.raises(ValidationError) as caught:
        services.change_driver_status(
            driver_id=driver.id, organisation=org, action="suspend", actor=RULE, reason=" "
        )
    assert "reason" in caught.value.message_dict
    with pytest.raises(InvalidTransition) as refused:
        services.change_driver_status(
            driver_id=driver.id, organisation=org, action="deny_access", actor=RULE, reason="x"
        )
    assert "ACTIVE" in refused.value.message
    assert Driver.objects.get(id=driver.id).status == DriverStatus.ACTIVE


def test_another_organisation_cannot_touch_a_driver(org, other_org):
    driver = make_active_driver(org)
    with pytest.raises(Driver.DoesNotExist):
        services.change_driver_status(
            driver_id=driver.id, organisation=other_org, action="suspend", actor=RULE, reason="x"
        )


def test_override_reverses_a_denial_and_is_audited(org, org_admin):
    driver = services.create_driver(
        organisation=org,
        name="Applicant",
        phone="+358409999999",
        fleet_type="gig",
        vehicle_type="bicycle",
        actor=RULE,
    )
    services.change_driver_status(
        driver_id=driver.id, organisation=org, action="deny_access", actor=RULE, reason="ID expired."
    )
    change = services.force_driver_status(
        driver_id=driver.id,
        organisation=org,
        to_status="ACTIVE",
        actor=Actor.for_user(org_admin),
        reason="Appeal upheld: the renewed ID was checked by hand.",
    )
    assert change.is_override and change.actor_user == org_admin
    assert Driver.objects.get(id=driver.id).status == DriverStatus.ACTIVE


def test_only_active_drivers_go_online(org):
    applicant = services.create_driver(
        organisation=org,
        name="New",
        phone="+358409999998",
        fleet_type="gig",
        vehicle_type="scooter",
        plate="SC-1",
        actor=RULE,
    )
    with pytest.raises(ValidationError) as caught:
        services.set_driver_online(driver_id=applicant.id, organisation=org, online=True, actor=RULE)
    assert "is_online" in caught.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Driver.objects.filter(id=applicant.id).update(is_online=True)
    active = make_active_driver(org, phone="+358401000010", plate="ON-1")
    services.set_driver_online(driver_id=active.id, organisation=org, online=True, actor=RULE)
    assert DomainEvent.objects.filter(event_type="driver.online", subject_id=str(active.id)).exists()


def ping(lat=60.17, lon=24.94, at=None, **extra):
    return services.PingInput(lat=lat, lon=lon, recorded_at=at or timezone.now(), **extra)


def test_pings_move_the_driver_forward_in_time_only(org):
    driver = make_active_driver(org)
    now = timezone.now()
    services.record_ping(driver=driver, ping=ping(60.17, 24.94, now))
    services.record_ping(driver=driver, ping=ping(60.16, 24.93, now - timedelta(seconds=30)))  # late arrival
    driver.refresh_from_db()
    assert (round(driver.last_location.y, 2), driver.last_seen_at) == (60.17, now)
    services.record_ping(driver=driver, ping=ping(60.17, 24.94, now))  # a retry
    assert LocationPing.objects.filter(driver=driver).count() == 2


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"lat": 90.5}, "lat"),
        ({"lon": -180.5}, "lon"),
        ({"at": datetime(2030, 1, 1, tzinfo=UTC)}, "recorded_at"),
        ({"accuracy_m": -1.0}, "accuracy_m"),
        ({"speed_mps": -0.1}, "speed_mps"),
        ({"heading_deg": 360.0}, "heading_deg"),
    ],
)
def test_impossible_pings_are_refused_naming_the_field(org, bad, field):
    driver = make_active_driver(org)
    with pytest.raises(ValidationError) as caught:
        services.record_ping(driver=driver, ping=ping(**bad))
    assert field in caught.value.message_dict
    assert not LocationPing.objects.exists()


def test_zone_gets_its_h3_cells(org):
    zone = make_zone(org)
    assert len(zone.h3_cells) > 10
    assert all(len(cell) == 15 for cell in zone.h3_cells)


def test_vehicle_rules(org):
    driver = make_active_driver(org)
    vehicle = driver.vehicles.get()
    assert vehicle.capacity_kg > 0
    with pytest.raises(ValidationError) as caught:
        Vehicle(
            organisation=org, driver=driver, type="van", capacity_kg=10, capacity_litres=10, plate=""
        ).full_clean()
    assert "plate" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        Vehicle(
            organisation=org,
            driver=driver,
            type="car",
            capacity_kg=10,
            capacity_litres=10,
            plate="V-1",
            vin="IOQ",
        ).full_clean()
    assert "vin" in caught.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Vehicle.objects.create(
            organisation=org, driver=driver, type="car", capacity_kg=10, capacity_litres=10, plate="V-2"
        )


def test_a_driver_sees_their_own_decisions_and_reasons(org, client):
    from identity.models import Role, User

    user = User.objects.create_user(
        username="courier", password="pw-123456-x", organisation=org, role=Role.DRIVER
    )
    driver = make_active_driver(org)
    Driver.objects.filter(id=driver.id).update(user=user)
    services.change_driver_status(
        driver_id=driver.id,
        organisation=org,
        action="suspend",
        actor=RULE,
        reason="Three deliveries in a row were late.",
        inputs={"late_orders": ["A", "B", "C"]},
    )
    other = make_active_driver(org, name="Other", phone="+358401000077", plate="OTH-1")
    client.force_login(user)
    mine = client.get(f"/api/v1/drivers/{driver.id}").json()
    assert [d["reason"] for d in mine["decisions"]] == [
        "Three deliveries in a row were late.",
        "All checks passed.",
    ]
    assert mine["decisions"][0]["decided_by"] == "automated rule"
    assert client.get(f"/api/v1/drivers/{other.id}").status_code == 404
