"""The demo's streets layer for the live map, from the bundled extract."""

import pytest
from django.contrib.gis.geos import Polygon

from demo.views import streets_geojson
from fleet import services as fleet_services
from tests.conftest import make_zone
from tests.dispatch.test_live_map import login

pytestmark = pytest.mark.django_db


def test_streets_cover_the_service_area(org, dispatcher):
    make_zone(org)
    response = login(dispatcher).get("/demo/streets.geojson")
    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    features = response.json()["features"]
    assert len(features) > 300
    names = {f["properties"]["name"] for f in features}
    assert "Mannerheimintie" in names


def test_an_organisation_elsewhere_or_without_an_area_gets_no_streets(org, other_org):
    assert streets_geojson(org.id)["features"] == []  # no zones, no hubs
    tampere = Polygon.from_bbox((23.75, 61.49, 23.78, 61.50))
    tampere.srid = 4326
    fleet_services.create_zone(organisation=other_org, name="Tampere", area=tampere)
    assert streets_geojson(other_org.id)["features"] == []
