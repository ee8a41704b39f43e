"""Places: WGS84 lon/lat points and distances in metres. The one place coordinates are checked."""

import math
from typing import NamedTuple

from django.contrib.gis.geos import Point
from django.db.models import F, FloatField, Func

WGS84 = 4326


def coordinate_errors(*, lat, lon) -> dict[str, str]:
    """What is wrong with a lat/lon pair, by name ({} when it is a place on Earth).

    Numbers only (a boolean is not one), finite, lat in [-90, 90], lon in [-180, 180].
    """
    errors = {}
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[name] = "Must be a number."
        elif (isinstance(value, float) and not math.isfinite(value)) or not -bound <= value <= bound:
            errors[name] = f"Must be between -{bound} and {bound}."
    return errors


def make_point(*, lat: float, lon: float) -> Point:
    """A WGS84 point. Raises ValueError naming the coordinate that is out of range."""
    errors = coordinate_errors(lat=lat, lon=lon)
    if errors:
        raise ValueError("; ".join(f"{name}: {message}" for name, message in errors.items()))
    return Point(float(lon), float(lat), srid=WGS84)


class LonLat(NamedTuple):
    """A point read as two numbers (PointX, PointY), not a GEOS geometry: point_as_dict
    takes either. Reading hundreds of GEOS points is slow."""

    x: float
    y: float


class PointX(Func):
    """A point column's longitude (x), read by the database (PostGIS and SpatiaLite alike)."""

    function = "ST_X"
    output_field = FloatField()

    def __init__(self, column: str):
        super().__init__(F(column))

    def as_postgresql(self, compiler, connection, **extra):
        # Geography columns (orders' places) have no ST_X: read them as geometry.
        return self.as_sql(compiler, connection, template="%(function)s(%(expressions)s::geometry)", **extra)


class PointY(PointX):
    """A point column's latitude (y), read by the database."""

    function = "ST_Y"


def point_as_dict(point: Point | LonLat | None) -> dict[str, float] | None:
    if point is None:
        return None
    return {"lat": round(point.y, 7), "lon": round(point.x, 7)}
