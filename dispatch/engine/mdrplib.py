"""Grubhub MDRPLIB instances (tab-separated, planar metres, minutes from the start of the day)
turned into the simulator's CSV rows, placed around a chosen origin on a chosen day (UTC).

Planar metres become degrees on the local tangent plane of the origin (east = x, north = y),
exact to well under a metre across a city.
"""

import csv
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dispatch.engine.geo import EARTH_RADIUS_M
from dispatch.engine.orders_csv import CourierRow, OrderRow


class MdrplibError(ValueError):
    pass


@dataclass(frozen=True)
class Parameters:
    meters_per_minute: float
    pickup_service_minutes: float
    dropoff_service_minutes: float
    target_click_to_door: float
    maximum_click_to_door: float
    pay_per_order: float
    guaranteed_pay_per_hour: float


# The simulator's settings an instance defines (instance_parameters.txt), by their
# `simulate` flag names; pay is in dollars there, minor units (cents) here.
SIMULATION_SETTINGS = (
    "speed_mps",
    "pickup_service_s",
    "dropoff_service_s",
    "target_minutes",
    "pay_per_order_minor",
    "guaranteed_hourly_minor",
)


def simulation_settings(parameters: Parameters) -> dict:
    """The instance's parameters in the simulator's units (metres per second, seconds, minutes,
    minor units): what `simulate` runs with unless told otherwise. The maximum click-to-door
    is kept for the record (the simulator measures against the target)."""
    return {
        "speed_mps": parameters.meters_per_minute / 60,
        "pickup_service_s": parameters.pickup_service_minutes * 60,
        "dropoff_service_s": parameters.dropoff_service_minutes * 60,
        "target_minutes": parameters.target_click_to_door,
        "maximum_click_to_door_minutes": parameters.maximum_click_to_door,
        "pay_per_order_minor": round(parameters.pay_per_order * 100),
        "guaranteed_hourly_minor": round(parameters.guaranteed_pay_per_hour * 100),
    }


def to_latlon(x: float, y: float, origin: tuple[float, float]) -> tuple[float, float]:
    lat0, lon0 = origin
    lat = lat0 + math.degrees(y / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return lat, lon


def to_xy(lat: float, lon: float, origin: tuple[float, float]) -> tuple[float, float]:
    lat0, lon0 = origin
    y = math.radians(lat - lat0) * EARTH_RADIUS_M
    x = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return x, y


def _table(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise MdrplibError(f"{path.name}: missing")
    with path.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [h.strip() for h in next(reader, [])]
        if tuple(header[: len(columns)]) != columns:
            raise MdrplibError(
                f"{path.name}, line 1: expected columns {' '.join(columns)}, got {' '.join(header)}"
            )
        rows = []
        for row in reader:
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < len(columns):
                raise MdrplibError(f"{path.name}, line {reader.line_num}: expected {len(columns)} values")
            rows.append((reader.line_num, dict(zip(columns, (c.strip() for c in row), strict=False))))
        return rows


def _num(value: str, where: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise MdrplibError(f"{where}: not a number: {value!r}")
    if not math.isfinite(out):
        raise MdrplibError(f"{where}: not finite")
    return out


def read_parameters(directory: Path) -> Parameters:
    path = Path(directory) / "instance_parameters.txt"
    if not path.is_file():
        raise MdrplibError("instance_parameters.txt: missing")
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r]
    if len(rows) < 2 or len(rows[1]) < 7:
        raise MdrplibError("instance_parameters.txt: expected a header and one row of 7 values")
    return Parameters(
        *(_num(v, f"instance_parameters.txt, column {i + 1}") for i, v in enumerate(rows[1][:7]))
    )


def read_instance(
    directory: Path, *, origin: tuple[float, float], day: date
) -> tuple[list[OrderRow], list[CourierRow]]:
    directory = Path(directory)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def at(minutes: str, where: str) -> datetime:
        value = _num(minutes, where)
        if not 0 <= value <= 7 * 24 * 60:
            raise MdrplibError(f"{where}: minutes out of range: {minutes!r}")
        return start + timedelta(minutes=value)

    restaurants = {}
    for line, r in _table(directory / "restaurants.txt", ("restaurant", "x", "y")):
        where = f"restaurants.txt, line {line}"
        restaurants[r["restaurant"]] = to_latlon(_num(r["x"], where), _num(r["y"], where), origin)
    orders = []
    for line, r in _table(
        directory / "orders.txt", ("order", "x", "y", "placement_time", "restaurant", "ready_time")
    ):
        where = f"orders.txt, line {line}"
        if r["restaurant"] not in restaurants:
            raise MdrplibError(f"{where}: unknown restaurant {r['restaurant']!r}")
        plat, plon = restaurants[r["restaurant"]]
        dlat, dlon = to_latlon(_num(r["x"], where), _num(r["y"], where), origin)
        placed, ready = at(r["placement_time"], where), at(r["ready_time"], where)
        if ready < placed:
            raise MdrplibError(f"{where}: ready_time before placement_time")
        orders.append(OrderRow(r["order"], placed, ready, plat, plon, dlat, dlon))
    couriers = []
    for line, r in _table(directory / "couriers.txt", ("courier", "x", "y", "on_time", "off_time")):
        where = f"couriers.txt, line {line}"
        lat, lon = to_latlon(_num(r["x"], where), _num(r["y"], where), origin)
        on, off = at(r["on_time"], where), at(r["off_time"], where)
        if off <= on:
            raise MdrplibError(f"{where}: off_time not after on_time")
        couriers.append(CourierRow(r["courier"], on, off, lat, lon))
    return orders, couriers
