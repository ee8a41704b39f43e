"""Traffic: records from feeds and callers, speeds learnt from our own drivers' pings, and the
snapshot of speed factors the travel-time providers apply at a departure time.

Record format (the API body's `records` and the polled feed's; README "Traffic feed"): each
record has an `id`, a `type` (`speed` or `incident`), exactly one target (`way_id`: an OSM way;
`h3_cell`: an H3 cell of resolution 5-15; `polygon`: a GeoJSON Polygon), a `factor` of the
free-flow speed in [0, 2] (0 closes the road), `valid_from` < `valid_until` (ISO 8601 with an
offset) and an optional `description`. A batch is all or nothing: one bad record refuses it,
naming `records[i].field`.

Blending (per H3 cell of TRAFFIC_H3_RES): speed records from feeds and callers (their mean) and
the factor learnt from pings (`learn_cell_speeds`) give TRAFFIC_FEED_WEIGHT x feed + (1 - weight)
x learnt; either alone counts in full. Incidents are not blended: the lowest of the incidents and
the blend wins. A road (way) record wins over its area's factor in the providers.
"""

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import h3
import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.actors import Actor
from core.db import lock
from core.events import record_event
from dispatch.engine.geo import haversine_m
from dispatch.engine.roads import TRAFFIC_H3_RES, TrafficSnapshot
from dispatch.engine.travel import DETOUR_FACTOR, VEHICLE_SPEED_MPS
from dispatch.models import LearnedCellSpeed, TrafficKind, TrafficRecord
from fleet.models import LocationPing, Vehicle
from identity.models import Organisation

MAX_RECORDS = 1000
MAX_CELLS_PER_RECORD = 5000
RECORD_FIELDS = {
    "id",
    "type",
    "way_id",
    "h3_cell",
    "polygon",
    "factor",
    "valid_from",
    "valid_until",
    "description",
}
# Floating car data: consecutive pings 5-120 s apart; below 1 m/s the driver stood (a stop, not
# traffic), above 45 m/s the fix jumped. A cell needs MIN_SAMPLES to count. The free-flow
# reference is the vehicle type's haversine speed times the usual street detour (on-road speed).
PING_GAP_S = (5.0, 120.0)
PING_SPEED_MPS = (1.0, 45.0)
MIN_SAMPLES = 5
LEARN_WINDOW = timedelta(minutes=30)
LEARNT_VALID_FOR = timedelta(minutes=30)


@dataclass(frozen=True)
class IngestResult:
    records: int
    rows: int


def _field(index: int, name: str, message: str) -> ValidationError:
    return ValidationError({f"records[{index}].{name}": [message]})


def _time(raw, index: int, name: str) -> datetime:
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None or value.tzinfo is None:
        raise _field(index, name, "Give an ISO 8601 time with a UTC offset (e.g. 2026-12-02T09:00:00Z).")
    return value


def _cells(record: dict, index: int) -> tuple[int | None, list[str]]:
    """(way_id, []) or (None, the record's cells at TRAFFIC_H3_RES)."""
    targets = [name for name in ("way_id", "h3_cell", "polygon") if name in record]
    if len(targets) != 1:
        raise _field(index, "way_id", "Give exactly one of way_id, h3_cell or polygon.")
    target = targets[0]
    value = record[target]
    if target == "way_id":
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _field(index, "way_id", "An OpenStreetMap way id: a positive integer.")
        return value, []
    if target == "h3_cell":
        if not isinstance(value, str) or not h3.is_valid_cell(value):
            raise _field(index, "h3_cell", "Not a valid H3 cell.")
        res = h3.get_resolution(value)
        if res < 5:
            raise _field(index, "h3_cell", "Use a cell of resolution 5 or finer.")
        if res > TRAFFIC_H3_RES:
            return None, [h3.cell_to_parent(value, TRAFFIC_H3_RES)]
        return None, list(h3.cell_to_children(value, TRAFFIC_H3_RES))
    try:
        if not isinstance(value, dict) or value.get("type") != "Polygon":
            raise ValueError("not a Polygon")
        ring = value["coordinates"][0]
        for lon, lat in ring:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError("a coordinate is outside lon [-180, 180], lat [-90, 90]")
        cells = list(h3.geo_to_cells(value, TRAFFIC_H3_RES))
    except (ValueError, TypeError, KeyError, IndexError, h3.H3BaseException) as exc:
        raise _field(index, "polygon", f"A GeoJSON Polygon with [lon, lat] rings is needed ({exc}).")
    if not cells:  # smaller than a cell: the cell under its first corner
        cells = [h3.latlng_to_cell(ring[0][1], ring[0][0], TRAFFIC_H3_RES)]
    if len(cells) > MAX_CELLS_PER_RECORD:
        raise _field(index, "polygon", f"Covers {len(cells)} cells; at most {MAX_CELLS_PER_RECORD}.")
    return None, cells


def parse_records(records, *, source: str, organisation: Organisation) -> list[list[TrafficRecord]]:
    """The records as unsaved rows (one list per record); ValidationError names records[i].field."""
    if not isinstance(records, list) or not records:
        raise ValidationError({"records": ["A non-empty list of traffic records."]})
    if len(records) > MAX_RECORDS:
        raise ValidationError({"records": [f"At most {MAX_RECORDS} records per request."]})
    seen: set[str] = set()
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValidationError({f"records[{index}]": ["A JSON object."]})
        unknown = sorted(set(record) - RECORD_FIELDS)
        if unknown:
            raise _field(index, unknown[0], "Unknown field.")
        external_id = record.get("id")
        if not isinstance(external_id, str) or not 0 < len(external_id) <= 100:
            raise _field(index, "id", "A string of 1-100 characters.")
        if external_id in seen:
            raise _field(index, "id", "Repeats an earlier record's id.")
        seen.add(external_id)
        kind = record.get("type")
        if kind not in TrafficKind.values:
            raise _field(index, "type", f"One of {', '.join(TrafficKind.values)}.")
        factor = record.get("factor")
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0 <= factor <= 2:
            raise _field(index, "factor", "A number from 0 (closed) to 2.")
        valid_from = _time(record.get("valid_from"), index, "valid_from")
        valid_until = _time(record.get("valid_until"), index, "valid_until")
        if valid_until <= valid_from:
            raise _field(index, "valid_until", "Must be after valid_from.")
        description = record.get("description", "")
        if not isinstance(description, str) or len(description) > 200:
            raise _field(index, "description", "A string of at most 200 characters.")
        way_id, cells = _cells(record, index)
        common = {
            "organisation": organisation,
            "source": source,
            "external_id": external_id,
            "kind": kind,
            "factor": float(factor),
            "valid_from": valid_from,
            "valid_until": valid_until,
            "description": description,
        }
        if way_id is not None:
            out.append([TrafficRecord(way_id=way_id, **common)])
        else:
            out.append([TrafficRecord(h3_cell=cell, **common) for cell in cells])
    return out


def _bump_version(organisation_id) -> None:
    """Providers cache snapshots per version: a new version after every change."""
    key = version_key(organisation_id)
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=None)


def version_key(organisation_id) -> str:
    return f"traffic:version:{organisation_id}"


def ingest_traffic(*, organisation: Organisation, source: str, records, actor: Actor) -> IngestResult:
    """Store a batch of traffic records (all or nothing); a record replaces what the same source
    sent before under the same id."""
    if not isinstance(source, str) or not 0 < len(source) <= 64:
        raise ValidationError({"source": ["A string of 1-64 characters naming the feed."]})
    parsed = parse_records(records, source=source, organisation=organisation)
    rows = [row for group in parsed for row in group]
    with transaction.atomic():
        # One batch at a time per organisation: two sends of one record never both stay.
        lock(Organisation.objects.filter(id=organisation.id)).get()
        TrafficRecord.objects.filter(
            organisation=organisation, source=source, external_id__in=[g[0].external_id for g in parsed]
        ).delete()
        TrafficRecord.objects.bulk_create(rows, batch_size=500)
        record_event(
            organisation=organisation,
            event_type="traffic.updated",
            subject_type="traffic",
            subject_id=source,
            actor=actor,
            payload={
                "source": source,
                "records": len(parsed),
                "incidents": sum(1 for g in parsed if g[0].kind == TrafficKind.INCIDENT),
            },
        )
        transaction.on_commit(lambda: _bump_version(organisation.id))
    return IngestResult(len(parsed), len(rows))


# --- Floating car data --------------------------------------------------------------------------


def ping_samples(pings_by_driver: dict, vehicle_of: dict) -> dict[str, list[tuple[float, float]]]:
    """Cell -> [(speed m/s, factor)] from consecutive pings of each driver (oldest first)."""
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for driver_id, pings in pings_by_driver.items():
        reference = (
            VEHICLE_SPEED_MPS.get(vehicle_of.get(driver_id, "car"), VEHICLE_SPEED_MPS["car"]) * DETOUR_FACTOR
        )
        for a, b in pairwise(pings):
            gap = (b.recorded_at - a.recorded_at).total_seconds()
            if not PING_GAP_S[0] <= gap <= PING_GAP_S[1]:
                continue
            metres = haversine_m(a.location.y, a.location.x, b.location.y, b.location.x)
            speed = metres / gap
            if not PING_SPEED_MPS[0] <= speed <= PING_SPEED_MPS[1]:
                continue
            cell = h3.latlng_to_cell(
                (a.location.y + b.location.y) / 2, (a.location.x + b.location.x) / 2, TRAFFIC_H3_RES
            )
            samples[cell].append((speed, speed / reference))
    return samples


def learn_cell_speeds(*, organisation: Organisation, now: datetime | None = None) -> int:
    """Learn per-cell speed factors from the organisation's pings of the last LEARN_WINDOW (the
    median of each cell's samples, at least MIN_SAMPLES, clipped to [0.1, 1.5]). Idempotent per
    window end; returns the cells stored."""
    now = now or timezone.now()
    start = now - LEARN_WINDOW
    pings = (
        LocationPing.objects.filter(
            driver__organisation=organisation, recorded_at__gte=start, recorded_at__lt=now
        )
        .only("driver_id", "location", "recorded_at")
        .order_by("driver_id", "recorded_at")
    )
    by_driver: dict = defaultdict(list)
    for ping in pings:
        by_driver[ping.driver_id].append(ping)
    vehicle_of = dict(
        Vehicle.objects.filter(
            organisation=organisation, is_active=True, driver_id__in=list(by_driver)
        ).values_list("driver_id", "type")
    )
    rows = []
    for cell, values in ping_samples(by_driver, vehicle_of).items():
        if len(values) < MIN_SAMPLES:
            continue
        rows.append(
            LearnedCellSpeed(
                organisation=organisation,
                h3_cell=cell,
                window_start=start,
                window_end=now,
                samples=len(values),
                median_speed_mps=statistics.median(v[0] for v in values),
                factor=min(1.5, max(0.1, statistics.median(v[1] for v in values))),
            )
        )
    with transaction.atomic():
        LearnedCellSpeed.objects.filter(organisation=organisation, window_end=now).delete()
        LearnedCellSpeed.objects.bulk_create(rows)
        if rows:
            transaction.on_commit(lambda: _bump_version(organisation.id))
    return len(rows)


# --- What the providers apply -------------------------------------------------------------------


def traffic_snapshot(organisation_id, depart_at: float) -> TrafficSnapshot:
    """The factors valid at the start of depart_at's TRAFFIC_BUCKET_SECONDS bucket (blended as the
    module says), keyed by (organisation, traffic version, bucket) and cached in-process."""
    bucket = int(depart_at // settings.TRAFFIC_BUCKET_SECONDS)
    key = (str(organisation_id), cache.get(version_key(organisation_id), 0), bucket)
    cached = _snapshots.get(key)
    if cached is not None:
        return cached
    moment = datetime.fromtimestamp(bucket * settings.TRAFFIC_BUCKET_SECONDS, tz=UTC)
    active = TrafficRecord.objects.filter(
        organisation_id=organisation_id, valid_from__lte=moment, valid_until__gt=moment
    ).values_list("kind", "way_id", "h3_cell", "factor")
    feed_cells: dict[str, list[float]] = defaultdict(list)
    feed_ways: dict[int, list[float]] = defaultdict(list)
    incident_cells: dict[str, float] = {}
    incident_ways: dict[int, float] = {}
    for kind, way_id, cell, factor in active:
        if kind == TrafficKind.INCIDENT:
            if way_id is not None:
                incident_ways[way_id] = min(factor, incident_ways.get(way_id, factor))
            else:
                incident_cells[cell] = min(factor, incident_cells.get(cell, factor))
        elif way_id is not None:
            feed_ways[way_id].append(factor)
        else:
            feed_cells[cell].append(factor)
    learnt = dict(
        LearnedCellSpeed.objects.filter(
            organisation_id=organisation_id, window_end__lte=moment, window_end__gt=moment - LEARNT_VALID_FOR
        )
        .order_by("window_end")
        .values_list("h3_cell", "factor")
    )
    cells = blend(feed_cells, learnt, settings.TRAFFIC_FEED_WEIGHT)
    for cell, factor in incident_cells.items():
        cells[cell] = min(factor, cells.get(cell, factor))
    ways = {way: sum(values) / len(values) for way, values in feed_ways.items()}
    for way, factor in incident_ways.items():
        ways[way] = min(factor, ways.get(way, factor))
    snapshot = TrafficSnapshot(key=key, way_factors=ways, cell_factors=cells)
    if len(_snapshots) > 256:
        _snapshots.clear()
    _snapshots[key] = snapshot
    return snapshot


_snapshots: dict = {}


def blend(feed: dict[str, list[float]], learnt: dict[str, float], feed_weight: float) -> dict[str, float]:
    """Per cell: feed_weight x the feed's mean + (1 - feed_weight) x the learnt factor; one alone in full."""
    out = {}
    for cell in set(feed) | set(learnt):
        values = feed.get(cell)
        mean = sum(values) / len(values) if values else None
        if mean is not None and cell in learnt:
            out[cell] = feed_weight * mean + (1 - feed_weight) * learnt[cell]
        else:
            out[cell] = mean if mean is not None else learnt[cell]
    return out


# --- The polled feed ----------------------------------------------------------------------------

FEED_FORMAT = "fleetroot-traffic/1"
FEED_MAX_BYTES = 4 * 1024 * 1024


class FeedError(Exception):
    """The feed could not be read or broke its format; the message says where."""


def poll_traffic_feed(*, organisation: Organisation, url: str, timeout_s: float = 10.0) -> IngestResult:
    """GET the feed (README "Traffic feed": {"format": "fleetroot-traffic/1", "source", "records"})
    and ingest its records, all or nothing. A failing or malformed feed changes nothing."""
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FeedError(f"{url}: HTTP {response.status_code}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > FEED_MAX_BYTES:
                    raise FeedError(f"{url}: larger than {FEED_MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise FeedError(f"{url}: {exc}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise FeedError(f"{url}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FEED_FORMAT:
        raise FeedError(f'{url}: "format" must be "{FEED_FORMAT}"')
    try:
        return ingest_traffic(
            organisation=organisation,
            source=document.get("source"),
            records=document.get("records"),
            actor=Actor.system("traffic-feed"),
        )
    except ValidationError as exc:
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise FeedError(f"{url}: {fields}") from exc
