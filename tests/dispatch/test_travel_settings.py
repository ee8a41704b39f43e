"""TRAVEL_TIME_PROVIDER picks the provider for rounds and the simulate command; couriers' vehicle
types reach the simulator."""

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from dispatch.engine.travel import HaversineTravelTimes, RoadTravelTimes
from dispatch.travel import travel_times

ORDERS = """order_id,placed_at,ready_at,pickup_lat,pickup_lon,dropoff_lat,dropoff_lon
o1,2024-05-01T11:00:00Z,2024-05-01T11:10:00Z,60.1690,24.9410,60.1760,24.9480
o2,2024-05-01T11:05:00Z,2024-05-01T11:15:00Z,60.1700,24.9440,60.1660,24.9380
o3,2024-05-01T11:20:00Z,2024-05-01T11:30:00Z,60.1745,24.9390,60.1680,24.9500
"""
COURIERS = """courier_id,start_at,end_at,lat,lon,vehicle_type
c1,2024-05-01T11:00:00Z,2024-05-01T13:00:00Z,60.1710,24.9420,{vehicle}
"""


def test_the_setting_picks_the_provider(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"
    assert isinstance(travel_times(), HaversineTravelTimes)
    settings.TRAVEL_TIME_PROVIDER = "roads"
    assert isinstance(travel_times(), RoadTravelTimes)
    settings.TRAVEL_TIME_PROVIDER = "valhalla"
    with pytest.raises(ImproperlyConfigured, match="haversine, roads, pgrouting"):
        travel_times()


@pytest.mark.skipif(not settings.DATABASE_IS_SPATIALITE, reason="SpatiaLite only")
def test_pgrouting_needs_postgresql(db):
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL"):
        travel_times(provider="pgrouting")


def simulate(tmp_path, travel, vehicle="car"):
    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "couriers.csv").write_text(COURIERS.format(vehicle=vehicle))
    out = StringIO()
    args = ["--orders", str(tmp_path / "orders.csv"), "--couriers", str(tmp_path / "couriers.csv")]
    call_command("simulate", *args, "--policy", "greedy", "--travel", travel, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_simulator_drives_on_the_roads_per_vehicle(tmp_path):
    straight = simulate(tmp_path, "haversine")
    car = simulate(tmp_path, "roads", "car")
    bike = simulate(tmp_path, "roads", "bicycle")
    assert straight["delivered"] == car["delivered"] == bike["delivered"] == 3
    assert (
        len(
            {
                straight["mean_click_to_door_min"],
                car["mean_click_to_door_min"],
                bike["mean_click_to_door_min"],
            }
        )
        == 3
    )
    with pytest.raises(CommandError, match="line 2, field vehicle_type: expected one of bicycle"):
        simulate(tmp_path, "roads", "hovercraft")


def test_a_round_says_when_travel_times_were_estimates(org, settings):
    """Off the road network (here: Espoo, west of the bundled extract) the round still offers, on
    straight-line estimates, and its report says so; inside the extract it does not."""
    from dispatch.services.rounds import run_round
    from tests.dispatch.test_rounds import LAT, LON, driver_at, new_order

    settings.TRAVEL_TIME_PROVIDER = "roads"
    driver_at(org, 1, lat=60.2055, lon=24.6559)
    new_order(org, "ESPOO-1", lat=60.2060, lon=24.6600)
    report = run_round(organisation=org)
    assert len(report.offers) == 1
    assert "straight-line estimates (places off the road network)" in report.travel_note
    assert any(line.startswith("  travel times: ") for line in report.lines())
    driver_at(org, 2, lat=LAT + 0.002, lon=LON)
    new_order(org, "HKI-1")
    inside = run_round(organisation=org)
    assert len(inside.offers) == 1 and inside.travel_note == ""
