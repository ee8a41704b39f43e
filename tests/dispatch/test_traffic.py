"""Traffic: the ingest API (all or nothing, errors name the record and field), the polled feed
over real HTTP, speeds learnt from our own drivers' pings, the blend, and ETAs (and a round's
offer) that change when traffic does."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import h3
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent
from dispatch import tasks
from dispatch.engine.roads import TRAFFIC_H3_RES
from dispatch.models import LearnedCellSpeed, Offer, TrafficRecord
from dispatch.services import traffic
from dispatch.services.rounds import run_round
from dispatch.travel import travel_times
from fleet import services as fleet_services
from identity.models import Role
from identity.services import create_api_key, create_client
from tests.api.conftest import client_for, error_of, session_client
from tests.conftest import make_user, post
from tests.dispatch.test_rounds import LAT, LON, driver_at, new_order

CENTRE = {  # most of the bundled extract (central Helsinki)
    "type": "Polygon",
    "coordinates": [
        [[24.936, 60.165], [24.952, 60.165], [24.952, 60.178], [24.936, 60.178], [24.936, 60.165]]
    ],
}


def record(**overrides):
    start = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    base = {
        "id": "r1",
        "type": "speed",
        "way_id": 123,
        "factor": 0.5,
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(hours=1)).isoformat(),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def admin_api(org):
    return session_client(make_user(org, Role.ORG_ADMIN, "traffic-admin"))


def test_an_org_admin_sends_records_for_roads_cells_and_areas(org, admin_api):
    coarse = h3.latlng_to_cell(60.17, 24.94, 8)
    body = {
        "source": "city",
        "records": [
            record(id="road"),
            record(id="cell", way_id=None, h3_cell=coarse, type="incident", factor=0.2),
            record(id="area", way_id=None, polygon=CENTRE, factor=0.7, description="Snow"),
        ],
    }
    response = post(admin_api, "/api/v1/traffic/records", body)
    assert response.status_code == 201, response.content
    assert response.json()["records"] == 3
    rows = TrafficRecord.objects.filter(organisation=org)
    assert rows.filter(external_id="road", way_id=123).count() == 1
    assert set(rows.filter(external_id="cell").values_list("h3_cell", flat=True)) == set(
        h3.cell_to_children(coarse, TRAFFIC_H3_RES)
    )
    area = rows.filter(external_id="area")
    assert area.count() > 10 and all(
        h3.get_resolution(c) == TRAFFIC_H3_RES for c in area.values_list("h3_cell", flat=True)
    )
    assert response.json()["rows"] == rows.count()
    event = DomainEvent.objects.get(organisation=org, event_type="traffic.updated")
    assert event.payload == {"source": "city", "records": 3, "incidents": 1}
    listed = admin_api.get("/api/v1/traffic/records").json()["results"]
    assert {row["external_id"] for row in listed} == {"road", "cell", "area"}
    # The same id from the same source replaces what it sent before.
    again = post(
        admin_api, "/api/v1/traffic/records", {"source": "city", "records": [record(id="road", factor=0.9)]}
    )
    assert again.status_code == 201
    assert list(rows.filter(external_id="road").values_list("factor", flat=True)) == [0.9]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (record(id="b", factor=3), "records[1].factor"),
        (record(id="b", factor=True), "records[1].factor"),
        (record(id="b", type="jam"), "records[1].type"),
        (record(id="b", way_id=None), "records[1].way_id"),
        (record(id="b", h3_cell="891126d338fffff"), "records[1].way_id"),
        (record(id="b", way_id=None, h3_cell="nonsense"), "records[1].h3_cell"),
        (record(id="b", way_id=None, h3_cell=h3.latlng_to_cell(60.17, 24.94, 2)), "records[1].h3_cell"),
        (
            record(id="b", way_id=None, polygon={"type": "Point", "coordinates": [24.9, 60.1]}),
            "records[1].polygon",
        ),
        (record(id="b", way_id=-4), "records[1].way_id"),
        (record(id="b", valid_from="2030-01-01T08:00:00"), "records[1].valid_from"),
        (record(id="b", valid_until="2029-01-01T08:00:00Z"), "records[1].valid_until"),
        (record(id="r1"), "records[1].id"),
        (record(id="b", speed=3), "records[1].speed"),
        ("not an object", "records[1]"),
    ],
)
def test_a_bad_record_refuses_the_whole_batch_naming_record_and_field(org, admin_api, bad, field):
    response = post(admin_api, "/api/v1/traffic/records", {"source": "city", "records": [record(), bad]})
    assert response.status_code == 400
    assert field in error_of(response)["fields"], error_of(response)
    assert not TrafficRecord.objects.filter(organisation=org).exists()
    assert not DomainEvent.objects.filter(organisation=org, event_type="traffic.updated").exists()


def test_the_body_itself_is_checked(admin_api):
    for body, field in (
        ({"source": "city", "records": []}, "records"),
        ({"records": [record()]}, "source"),
        ({"source": "city", "records": [record()], "extra": 1}, "extra"),
    ):
        response = post(admin_api, "/api/v1/traffic/records", body)
        assert response.status_code == 400 and field in error_of(response)["fields"]


def test_who_may_send_traffic(org, other_org):
    dispatcher = session_client(make_user(org, Role.DISPATCHER, "traffic-dispatcher"))
    refused = post(dispatcher, "/api/v1/traffic/records", {"source": "city", "records": [record()]})
    assert refused.status_code == 403 and "traffic:manage" in error_of(refused)["message"]
    oms = client_for(create_api_key(organisation=org, name="oms", scopes=["orders:read"]))
    assert post(oms, "/api/v1/traffic/records", {"source": "c", "records": [record()]}).status_code == 403
    feed = client_for(create_api_key(organisation=org, name="city-feed", scopes=["traffic:manage"]))
    assert post(feed, "/api/v1/traffic/records", {"source": "c", "records": [record()]}).status_code == 201
    # A feed key writes into its own organisation only; the other sees none of it.
    other = client_for(create_api_key(organisation=other_org, name="other", scopes=["traffic:manage"]))
    assert other.get("/api/v1/traffic/records").json()["results"] == []
    assert TrafficRecord.objects.get().organisation == org
    # A key limited to a client cannot hold the scope.
    client = create_client(organisation=org, slug="shop", name="Shop")
    with pytest.raises(Exception, match="scopes"):
        create_api_key(organisation=org, name="shop-feed", client=client, scopes=["traffic:manage"])


# --- the polled feed over HTTP --------------------------------------------------------------------


class FeedServer:
    """A local HTTP server that serves whatever document the test sets."""

    def __init__(self):
        self.document: bytes = b"{}"
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.document)))
                self.end_headers()
                self.wfile.write(outer.document)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/traffic.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, document, status=200):
        self.document = json.dumps(document).encode() if not isinstance(document, bytes) else document
        self.status = status


@pytest.fixture
def feed():
    server = FeedServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_the_feed_is_polled_and_applied_all_or_nothing(org, feed):
    feed.serve(
        {"format": "fleetroot-traffic/1", "source": "digitraffic", "records": [record(), record(id="r2")]}
    )
    result = traffic.poll_traffic_feed(organisation=org, url=feed.url)
    assert (result.records, result.rows) == (2, 2)
    assert set(TrafficRecord.objects.values_list("source", "external_id")) == {
        ("digitraffic", "r1"),
        ("digitraffic", "r2"),
    }
    before = list(TrafficRecord.objects.values_list("id", flat=True))
    for document, status, message in (
        (
            {
                "format": "fleetroot-traffic/1",
                "source": "digitraffic",
                "records": [record(factor=0.1), record(id="x", factor=-1)],
            },
            200,
            r"records\[1\]\.factor",
        ),
        ({"source": "digitraffic", "records": [record()]}, 200, '"format" must be'),
        (b"<html>", 200, "not JSON"),
        ({"error": "down"}, 503, "HTTP 503"),
    ):
        feed.serve(document, status)
        with pytest.raises(traffic.FeedError, match=message):
            traffic.poll_traffic_feed(organisation=org, url=feed.url)
        assert list(TrafficRecord.objects.values_list("id", flat=True)) == before
        assert TrafficRecord.objects.get(external_id="r1").factor == 0.5


def test_the_beat_task_polls_the_configured_feed(org, feed):
    feed.serve({"format": "fleetroot-traffic/1", "source": "city", "records": [record()]})
    with override_settings(TRAFFIC_FEED_URL=feed.url, TRAFFIC_FEED_ORG=org.slug):
        tasks.learn_traffic()
    assert TrafficRecord.objects.filter(organisation=org, source="city").count() == 1


# --- floating car data ----------------------------------------------------------------------------


def drive(driver, start, *, lat, lon, metres_per_ping, pings, every_s=10):
    """Pings every `every_s` seconds moving north by `metres_per_ping`."""
    for k in range(pings):
        fleet_services.record_ping(
            driver=driver,
            ping=fleet_services.PingInput(
                lat=lat + k * metres_per_ping / 111_320,
                lon=lon,
                recorded_at=start + timedelta(seconds=k * every_s),
            ),
        )


def test_speeds_are_learnt_from_consecutive_pings_and_blended_with_the_feed(org, admin_api):
    now = timezone.now().replace(microsecond=0)
    crawling = driver_at(org, 1, located=False)  # a car
    drive(crawling, now - timedelta(minutes=10), lat=60.1700, lon=24.9400, metres_per_ping=26, pings=8)
    parked = driver_at(org, 2, located=False)
    drive(parked, now - timedelta(minutes=10), lat=60.1750, lon=24.9450, metres_per_ping=0.5, pings=8)
    assert traffic.learn_cell_speeds(organisation=org, now=now) >= 1
    learnt = LearnedCellSpeed.objects.get(
        organisation=org, h3_cell=h3.latlng_to_cell(60.1701, 24.94, TRAFFIC_H3_RES)
    )
    assert learnt.median_speed_mps == pytest.approx(2.6, rel=0.02)
    assert learnt.factor == pytest.approx(2.6 / (8.0 * 1.3), rel=0.02) and learnt.samples >= 5
    parked_cell = h3.latlng_to_cell(60.1750, 24.945, TRAFFIC_H3_RES)
    assert not LearnedCellSpeed.objects.filter(h3_cell=parked_cell).exists()  # standing is not traffic
    assert traffic.learn_cell_speeds(organisation=org, now=now) >= 1  # again: replaced, not doubled
    assert LearnedCellSpeed.objects.filter(organisation=org, h3_cell=learnt.h3_cell).count() == 1
    # The feed says 0.5 for the same cell: 0.6 x 0.5 + 0.4 x learnt.
    post(
        admin_api,
        "/api/v1/traffic/records",
        {
            "source": "city",
            "records": [
                record(
                    way_id=None,
                    h3_cell=learnt.h3_cell,
                    valid_from=(now - timedelta(hours=1)).isoformat(),
                    valid_until=(now + timedelta(hours=1)).isoformat(),
                )
            ],
        },
    )
    snapshot = traffic.traffic_snapshot(org.id, (now + timedelta(minutes=6)).timestamp())
    assert snapshot.cell_factors[learnt.h3_cell] == pytest.approx(0.6 * 0.5 + 0.4 * learnt.factor)


def test_blend_weights():
    assert traffic.blend({"a": [0.4, 0.6]}, {"a": 1.0, "b": 0.3}, 0.6) == {"a": pytest.approx(0.7), "b": 0.3}


# --- ETAs follow traffic --------------------------------------------------------------------------


def test_the_same_pair_takes_longer_once_an_incident_starts(org, other_org, admin_api):
    start = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    a, b = (60.1690, 24.9410), (60.1740, 24.9460)
    travel = travel_times(organisation_id=org.id, provider="roads")
    before = travel.matrix([a], [b], (start - timedelta(minutes=10)).timestamp(), "car")
    assert not before.fallback.any()
    response = post(
        admin_api,
        "/api/v1/traffic/records",
        {
            "source": "police",
            "records": [
                record(
                    id="demo",
                    type="incident",
                    way_id=None,
                    polygon=CENTRE,
                    factor=0.25,
                    valid_from=start.isoformat(),
                    valid_until=(start + timedelta(hours=1)).isoformat(),
                )
            ],
        },
    )
    assert response.status_code == 201
    travel = travel_times(organisation_id=org.id, provider="roads")
    still_before = travel.matrix([a], [b], (start - timedelta(minutes=10)).timestamp(), "car")
    during = travel.matrix([a], [b], (start + timedelta(minutes=10)).timestamp(), "car")
    after = travel.matrix([a], [b], (start + timedelta(hours=2)).timestamp(), "car")
    assert still_before.seconds[0, 0] == pytest.approx(before.seconds[0, 0])
    assert after.seconds[0, 0] == pytest.approx(before.seconds[0, 0])
    assert during.seconds[0, 0] > 3 * before.seconds[0, 0] - 60  # road time x4, the snap legs unchanged
    # Another organisation's incident changes nothing for this one.
    other = travel_times(organisation_id=other_org.id, provider="roads")
    assert other.matrix([a], [b], (start + timedelta(minutes=10)).timestamp(), "car").seconds[
        0, 0
    ] == pytest.approx(before.seconds[0, 0])


def test_a_round_offers_with_road_times_under_traffic(org, other_org):
    """The dispatch round takes the settings' provider: the same driver and order in two
    organisations, one with an incident over the area, whose offer says a longer way to the pickup."""
    now = timezone.now()
    traffic.ingest_traffic(
        organisation=org,
        source="police",
        records=[
            record(
                type="incident",
                way_id=None,
                polygon=CENTRE,
                factor=0.2,
                valid_from=(now - timedelta(hours=1)).isoformat(),
                valid_until=(now + timedelta(hours=1)).isoformat(),
            )
        ],
        actor=Actor.system("test"),
    )
    minutes = {}
    for organisation in (org, other_org):
        driver_at(organisation, 1 if organisation == org else 2, lat=LAT + 0.004, lon=LON + 0.003)
        new_order(organisation, "T-1")
        run_round(organisation=organisation)
        line = next(
            x for x in Offer.objects.get(organisation=organisation).explanation if "to the pickup" in x
        )
        minutes[organisation.slug] = float(line.split()[0])
    assert minutes[org.slug] > 2 * minutes[other_org.slug] > 0


@pytest.mark.django_db(transaction=True)
def test_two_sends_of_the_same_record_at_once_leave_one(org):
    """On PostgreSQL the organisation's row lock makes the second batch wait, then replace the
    first's rows; on SQLite the single writer does the same."""
    barrier = threading.Barrier(2)
    errors = []

    def send(factor):
        try:
            barrier.wait(timeout=5)
            traffic.ingest_traffic(
                organisation=org,
                source="city",
                records=[record(way_id=None, polygon=CENTRE, factor=factor)],
                actor=Actor.system("test"),
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(f,)) for f in (0.3, 0.6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    rows = TrafficRecord.objects.filter(organisation=org, external_id="r1")
    cells = h3.geo_to_cells(CENTRE, TRAFFIC_H3_RES)
    assert rows.count() == len(cells)
    assert rows.values("factor").distinct().count() == 1
