"""The admin saves hubs, zones and drivers through fleet.services, showing their errors on the form."""

from django.urls import reverse

from core.models import DomainEvent
from fleet.models import Driver, Hub, Zone
from tests.conftest import make_active_driver, make_hub, make_zone

SMALL = "SRID=4326;MULTIPOLYGON(((24.94 60.165, 24.945 60.165, 24.945 60.168, 24.94 60.168, 24.94 60.165)))"
# The management forms of the driver page's inlines (vehicles, status decisions), unchanged.
EMPTY_INLINES = {
    f"{prefix}-{name}": value
    for prefix in ("vehicles", "status_changes")
    for name, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
}
HUGE = "SRID=4326;MULTIPOLYGON(((20 55, 30 55, 30 65, 20 65, 20 55)))"


def test_changing_a_zone_area_in_the_admin_recomputes_its_h3_cells(staff_client, org):
    zone = make_zone(org)
    before = list(zone.h3_cells)
    url = reverse("admin:fleet_zone_change", args=[zone.pk])
    response = staff_client.post(url, {"name": zone.name, "area": SMALL, "h3_resolution": 9})
    assert response.status_code == 302, response.context["adminform"].form.errors
    zone.refresh_from_db()
    assert zone.h3_cells and zone.h3_cells != before
    assert len(zone.h3_cells) < len(before)


def test_a_zone_too_large_for_its_resolution_is_refused_on_the_area_field(staff_client, org):
    zone = make_zone(org)
    url = reverse("admin:fleet_zone_change", args=[zone.pk])
    response = staff_client.post(url, {"name": zone.name, "area": HUGE, "h3_resolution": 9})
    assert response.status_code == 200
    assert "Covers about" in " ".join(response.context["adminform"].form.errors["area"])
    zone.refresh_from_db()
    assert zone.area.extent[0] > 24


def test_adding_a_zone_in_the_admin_computes_its_cells(staff_client, org):
    url = reverse("admin:fleet_zone_add")
    response = staff_client.post(
        url, {"organisation": org.pk, "name": "Kamppi", "area": SMALL, "h3_resolution": 9}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Zone.objects.get(name="Kamppi").h3_cells


def test_a_hub_name_taken_in_the_organisation_is_refused_on_the_name_field(staff_client, org):
    make_hub(org, name="Central hub")
    response = staff_client.post(
        reverse("admin:fleet_hub_add"),
        {
            "organisation": org.pk,
            "name": "Central hub",
            "address": "Somewhere 2",
            "location": "SRID=4326;POINT(24.94 60.17)",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors)
    assert Hub.objects.filter(organisation=org).count() == 1


def test_renaming_a_hub_to_a_taken_name_is_refused_on_the_name_field(staff_client, org):
    make_hub(org, name="Central hub")
    hub = make_hub(org, name="North hub")
    response = staff_client.post(
        reverse("admin:fleet_hub_change", args=[hub.pk]),
        {"name": "Central hub", "address": hub.address, "location": "SRID=4326;POINT(24.94 60.17)"},
    )
    assert response.status_code == 200
    assert "already exists" in " ".join(response.context["adminform"].form.errors["name"])
    hub.refresh_from_db()
    assert hub.name == "North hub"


def test_adding_a_driver_in_the_admin_records_the_event_with_who_did_it(staff_client, org, staff_user):
    response = staff_client.post(
        reverse("admin:fleet_driver_add"),
        {
            "organisation": org.pk,
            "name": "Aino",
            "phone": "+358401112233",
            "fleet_type": "gig",
            "vehicle_type": "car",
            "plate": "ABC-999",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    driver = Driver.objects.get(phone="+358401112233")
    assert driver.status == "APPLICANT" and driver.vehicles.get().type == "car"
    event = DomainEvent.objects.get(event_type="driver.created", subject_id=str(driver.id))
    assert event.actor_user == staff_user
    assert driver.history.latest().history_user == staff_user


def test_editing_a_driver_in_the_admin_goes_through_the_service_and_cannot_touch_the_status(
    staff_client, org, staff_user
):
    driver = make_active_driver(org)
    response = staff_client.post(
        reverse("admin:fleet_driver_change", args=[driver.pk]),
        {
            "name": "Driver Renamed",
            "phone": driver.phone,
            "email": "new@example.com",
            "fleet_type": "gig",
            "status": "SUSPENDED",
            "is_online": "on",
            **EMPTY_INLINES,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    driver.refresh_from_db()
    assert (driver.name, driver.status, driver.is_online) == ("Driver Renamed", "ACTIVE", False)
    event = DomainEvent.objects.get(event_type="driver.updated", subject_id=str(driver.id))
    assert event.actor_user == staff_user
    assert event.payload["changes"]["name"] == {"old": "Driver One", "new": "Driver Renamed"}
    assert set(event.payload["changes"]) == {"name", "email"}
    assert driver.history.latest().history_user == staff_user


def test_a_driver_phone_taken_in_the_organisation_is_refused_on_the_change_form(staff_client, org):
    make_active_driver(org, name="First", phone="+358401000001")
    second = make_active_driver(org, name="Second", phone="+358401000002", plate="XYZ-1")
    response = staff_client.post(
        reverse("admin:fleet_driver_change", args=[second.pk]),
        {"name": "Second", "phone": "+358401000001", "fleet_type": "gig", **EMPTY_INLINES},
    )
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors)
    second.refresh_from_db()
    assert second.phone == "+358401000002"
