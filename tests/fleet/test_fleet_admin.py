"""The admin saves hubs, zones and drivers through fleet.services, showing their errors on the form."""

from django.urls import reverse

from fleet.models import Hub, Zone
from tests.conftest import make_hub, make_zone

SMALL = "SRID=4326;MULTIPOLYGON(((24.94 60.165, 24.945 60.165, 24.945 60.168, 24.94 60.168, 24.94 60.165)))"
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
