"""The simulator's CSV inputs, read and validated whole: a bad row stops everything with an
error naming the line and the field (nothing is half-read).

orders:   order_id,placed_at,ready_at,pickup_lat,pickup_lon,dropoff_lat,dropoff_lon[,weight_kg,volume_l,value]
couriers: courier_id,start_at,end_at,lat,lon[,vehicle_type]

Times are ISO 8601 in UTC (`2024-05-01T11:30:00Z`; a time without an offset is read as UTC, any
other offset is refused); coordinates are WGS84 degrees; `value` is in integer minor units.
"""

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatch.engine.road_rules import VEHICLE_PROFILE

ORDER_REQUIRED = (
    "order_id",
    "placed_at",
    "ready_at",
    "pickup_lat",
    "pickup_lon",
    "dropoff_lat",
    "dropoff_lon",
)
ORDER_OPTIONAL = ("weight_kg", "volume_l", "value")
COURIER_REQUIRED = ("courier_id", "start_at", "end_at", "lat", "lon")
COURIER_OPTIONAL = ("vehicle_type",)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class CsvError(ValueError):
    def __init__(self, line: int, field: str | None, message: str):
        self.line, self.field = line, field
        where = f"line {line}" + (f", field {field}" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    placed_at: datetime
    ready_at: datetime
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    weight_kg: float = 0.0
    volume_l: float = 0.0
    value: int = 0


@dataclass(frozen=True)
class CourierRow:
    courier_id: str
    start_at: datetime
    end_at: datetime
    lat: float
    lon: float
    vehicle_type: str = ""


def parse_time(text: str, line: int, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CsvError(line, field, f"not an ISO 8601 time: {text!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset() != timedelta(0):
        raise CsvError(line, field, f"must be UTC (Z or +00:00), got {text!r}")
    if not EARLIEST <= value < LATEST:
        raise CsvError(line, field, f"time out of range: {text!r}")
    return value.astimezone(UTC)


def parse_number(text: str, line: int, field: str, *, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CsvError(line, field, f"not a number: {text!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise CsvError(line, field, f"out of range [{low:g}, {high:g}]: {text!r}")
    return value


def _rows(text: str | Iterable[str], required: tuple[str, ...], optional: tuple[str, ...]):
    if isinstance(text, str):
        text = io.StringIO(text)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError(1, None, "empty file: expected a header row")
    header = [h.strip() for h in header]
    for name in header:
        if name not in required and name not in optional:
            raise CsvError(1, name, f"unknown column (expected {', '.join(required + optional)})")
    if len(set(header)) != len(header):
        raise CsvError(1, None, "a column appears twice")
    for name in required:
        if name not in header:
            raise CsvError(1, name, "missing column")
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CsvError(line, None, f"expected {len(header)} values, got {len(row)}")
        values = dict(zip(header, (c.strip() for c in row), strict=True))
        for name in required:
            if values[name] == "":
                raise CsvError(line, name, "empty")
        yield line, values


def read_orders(text: str | Iterable[str]) -> list[OrderRow]:
    out, seen = [], set()
    for line, v in _rows(text, ORDER_REQUIRED, ORDER_OPTIONAL):
        if v["order_id"] in seen:
            raise CsvError(line, "order_id", f"duplicate id {v['order_id']!r}")
        seen.add(v["order_id"])
        placed = parse_time(v["placed_at"], line, "placed_at")
        ready = parse_time(v["ready_at"], line, "ready_at")
        if ready < placed:
            raise CsvError(line, "ready_at", "before placed_at")
        coords = {
            name: parse_number(
                v[name],
                line,
                name,
                low=-90 if name.endswith("lat") else -180,
                high=90 if name.endswith("lat") else 180,
            )
            for name in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon")
        }
        extra = {}
        for name in ("weight_kg", "volume_l"):
            if v.get(name):
                extra[name] = parse_number(v[name], line, name, low=0, high=1e6)
        if v.get("value"):
            try:
                extra["value"] = int(v["value"])
            except ValueError:
                raise CsvError(line, "value", f"not an integer amount in minor units: {v['value']!r}")
            if extra["value"] < 0:
                raise CsvError(line, "value", "negative")
        out.append(OrderRow(v["order_id"], placed, ready, **coords, **extra))
    return out


def read_couriers(text: str | Iterable[str]) -> list[CourierRow]:
    out, seen = [], set()
    for line, v in _rows(text, COURIER_REQUIRED, COURIER_OPTIONAL):
        if v["courier_id"] in seen:
            raise CsvError(line, "courier_id", f"duplicate id {v['courier_id']!r}")
        seen.add(v["courier_id"])
        start = parse_time(v["start_at"], line, "start_at")
        end = parse_time(v["end_at"], line, "end_at")
        if end <= start:
            raise CsvError(line, "end_at", "not after start_at")
        lat = parse_number(v["lat"], line, "lat", low=-90, high=90)
        lon = parse_number(v["lon"], line, "lon", low=-180, high=180)
        vehicle_type = v.get("vehicle_type", "")
        if vehicle_type and vehicle_type not in VEHICLE_PROFILE:
            raise CsvError(line, "vehicle_type", f"expected one of {', '.join(VEHICLE_PROFILE)}")
        out.append(CourierRow(v["courier_id"], start, end, lat, lon, vehicle_type))
    return out


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_orders(rows: Iterable[OrderRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ORDER_REQUIRED + ORDER_OPTIONAL)
    for r in rows:
        w.writerow(
            [r.order_id, iso(r.placed_at), iso(r.ready_at)]
            + [f"{x:.7f}" for x in (r.pickup_lat, r.pickup_lon, r.dropoff_lat, r.dropoff_lon)]
            + [f"{r.weight_kg:g}", f"{r.volume_l:g}", r.value]
        )
    return buf.getvalue()


def write_couriers(rows: Iterable[CourierRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COURIER_REQUIRED + COURIER_OPTIONAL)
    for r in rows:
        w.writerow(
            [r.courier_id, iso(r.start_at), iso(r.end_at), f"{r.lat:.7f}", f"{r.lon:.7f}", r.vehicle_type]
        )
    return buf.getvalue()
