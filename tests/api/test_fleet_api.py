"""Hubs and zones over the API: created and changed through the fleet services, checked at the edge."""

import pytest

from fleet.models import Hub, Zone
from tests.api.conftest import error_of, session_client
from tests.conftest import make_user, post

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[24.94, 60.17], [24.95, 60.17], [24.95, 60.175], [24.94, 60.175], [24.94, 60.17]]],
}


def test_create_and_update_a_hub(api, org):
    created = post(
        api,
        "/api/v1/hubs",
        {"name": "Store 12", "address": "Kamppi 1", "location": {"lat": 60.169, "lon": 24.932}},
    )
    assert created.status_code == 201, created.json()
    hub = created.json()
    assert hub["location"] == {"lat": 60.169, "lon": 24.932} and hub["is_active"] is True
    changed = api.patch(
        f"/api/v1/hubs/{hub['id']}", {"is_active": False, "address": "Kamppi 2"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["address"] == "Kamppi 2"
    assert Hub.objects.get(id=hub["id"]).is_active is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "address": "A", "location": {"lat": 91, "lon": 24.9}}, "location.lat"),
        ({"name": "X", "address": "A", "location": {"lat": 60.1}}, "location.lon"),
        ({"name": "X", "address": "A", "location": {"lat": 60.1, "lon": 24.9}, "colour": "red"}, "colour"),
        ({"address": "A", "location": {"lat": 60.1, "lon": 24.9}}, "name"),
    ],
)
def test_bad_hubs_are_refused_naming_the_field(api, org, body, field):
    response = post(api, "/api/v1/hubs", body)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Hub.objects.exists()


def test_duplicate_hub_name_is_named(api, org):
    body = {"name": "Store 1", "address": "A", "location": {"lat": 60.1, "lon": 24.9}}
    assert post(api, "/api/v1/hubs", body).status_code == 201
    again = post(api, "/api/v1/hubs", body)
    assert again.status_code == 400 and "name" in error_of(again)["fields"]


def test_create_a_zone_and_redraw_it(api, org):
    created = post(api, "/api/v1/zones", {"name": "Kamppi", "area": SQUARE, "h3_resolution": 10})
    assert created.status_code == 201, created.json()
    zone = created.json()
    assert zone["area"]["type"] == "MultiPolygon" and len(zone["h3_cells"]) > 5
    smaller = {
        "type": "Polygon",
        "coordinates": [[[24.94, 60.17], [24.942, 60.17], [24.942, 60.171], [24.94, 60.171], [24.94, 60.17]]],
    }
    redrawn = api.patch(f"/api/v1/zones/{zone['id']}", {"area": smaller, "h3_resolution": 11}, format="json")
    assert redrawn.status_code == 200, redrawn.json()
    assert redrawn.json()["h3_resolution"] == 11
    assert set(redrawn.json()["h3_cells"]) == set(Zone.objects.get(id=zone["id"]).h3_cells)
    assert redrawn.json()["h3_cells"] != zone["h3_cells"]


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[24.94, 60.17], [24.95, 60.175], [24.95, 60.17], [24.94, 60.175], [24.94, 60.17]]],
}
OPEN_RING = {"type": "Polygon", "coordinates": [[[24.94, 60.17], [24.95, 60.17], [24.95, 60.175]]]}
OUT_OF_RANGE = {
    "type": "Polygon",
    "coordinates": [[[200, 60.17], [24.95, 60.17], [24.95, 60.175], [200, 60.17]]],
}
HUGE = {"type": "Polygon", "coordinates": [[[0, 0], [60, 0], [60, 60], [0, 60], [0, 0]]]}


@pytest.mark.parametrize(
    ("area", "resolution"),
    [
        (BOWTIE, 9),
        (OPEN_RING, 9),
        (OUT_OF_RANGE, 9),
        ({"type": "Point", "coordinates": [24.9, 60.1]}, 9),
        ("not geojson", 9),
        (HUGE, 9),
        ({**SQUARE, "crs": "EPSG:3857"}, 9),
    ],
)
def test_bad_zones_are_refused_naming_the_area(api, org, area, resolution):
    response = post(api, "/api/v1/zones", {"name": "Bad", "area": area, "h3_resolution": resolution})
    assert response.status_code == 400, response.json()
    assert "area" in error_of(response)["fields"]
    assert not Zone.objects.exists()


def test_writing_the_fleet_needs_the_scope(org):
    dispatcher = make_user(org, "dispatcher", "d1")
    response = session_client(dispatcher).post(
        "/api/v1/hubs", {"name": "X", "address": "A", "location": {"lat": 60.1, "lon": 24.9}}, format="json"
    )
    assert response.status_code == 403 and "fleet:write" in error_of(response)["message"]
    assert session_client(dispatcher).get("/api/v1/hubs").status_code == 200
