"""Places: WGS84 lon/lat points and distances in metres."""

from django.contrib.gis.geos import Point

WGS84 = 4326


def make_point(*, lat: float, lon: float) -> Point:
    """A WGS84 point. Raises ValueError naming the coordinate that is out of range."""
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat must be between -90 and 90, got {lat}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon must be between -180 and 180, got {lon}")
    return Point(float(lon), float(lat), srid=WGS84)


def point_as_dict(point: Point | None) -> dict[str, float] | None:
    if point is None:
        return None
    return {"lat": round(point.y, 7), "lon": round(point.x, 7)}
