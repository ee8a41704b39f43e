"""Who may use an OpenStreetMap way, in which direction, and how fast: the one copy of the rules.

The embedded road graph (`roads.py`) and the pgRouting import (`manage.py load_roads`) both
read ways through `way_access`, so the two routers see the same network.

Vehicle types map to five profiles. Motor vehicles use the road classes below, keep one-way
rules (`oneway=yes|-1`, roundabouts, motorways) and never use footways or cycleways. Bicycles
use cycleways, roads below trunk, and footways/paths where `bicycle=yes|designated|permissive`;
they ride against a one-way street where the law allows it (`oneway:bicycle=no`,
`cycleway=opposite*`) and keep off ways tagged `bicycle=no|use_sidepath`.

Speeds: the way's `maxspeed` (km/h, or mph) times URBAN_SHARE (traffic lights, turns), else the
highway class's typical urban speed; each profile then caps and scales it (a truck is slower
than a car on the same street). Bicycles ride at a flat speed per kind of way.
"""

from dataclasses import dataclass

PROFILES = ("bicycle", "motorcycle", "car", "van", "truck")
VEHICLE_PROFILE = {
    "bicycle": "bicycle",
    "cargo_bike": "bicycle",
    "scooter": "motorcycle",
    "motorcycle": "motorcycle",
    "car": "car",
    "van": "van",
    "truck": "truck",
}

# Typical urban speed (km/h) by highway class, when the way has no maxspeed.
HIGHWAY_KMH = {
    "motorway": 90.0,
    "motorway_link": 50.0,
    "trunk": 60.0,
    "trunk_link": 40.0,
    "primary": 40.0,
    "primary_link": 30.0,
    "secondary": 35.0,
    "secondary_link": 30.0,
    "tertiary": 30.0,
    "tertiary_link": 25.0,
    "unclassified": 25.0,
    "residential": 25.0,
    "road": 25.0,
    "living_street": 10.0,
    "service": 15.0,
}
URBAN_SHARE = 0.8  # of maxspeed, on average, in a city
# Per motor profile: (cap km/h, share of the car's speed).
MOTOR_PROFILE = {
    "motorcycle": (50.0, 1.0),
    "car": (130.0, 1.0),
    "van": (100.0, 0.95),
    "truck": (80.0, 0.85),
}
# Bicycles: km/h by kind of way.
BICYCLE_KMH = {"cycleway": 18.0, "road": 16.0, "living_street": 12.0, "shared": 12.0}
BICYCLE_ROADS = frozenset(HIGHWAY_KMH) - {"motorway", "motorway_link", "trunk", "trunk_link"}
BICYCLE_SHARED = frozenset({"footway", "pedestrian", "path", "track", "bridleway"})
BICYCLE_YES = frozenset({"yes", "designated", "permissive"})
NO = frozenset({"no", "private"})
YES = frozenset({"yes", "1", "true"})
OPPOSITE = frozenset({"opposite", "opposite_lane", "opposite_track", "opposite_share_busway"})


@dataclass(frozen=True)
class Access:
    """A profile's right to use a way: forward (along its nodes), backward, and at what speed."""

    forward: bool
    backward: bool
    speed_mps: float


def profile_for(vehicle_type: str) -> str:
    """The routing profile of a vehicle type (fleet.Vehicle.Type values)."""
    try:
        return VEHICLE_PROFILE[vehicle_type]
    except KeyError:
        raise ValueError(
            f"unknown vehicle type {vehicle_type!r}: expected one of {', '.join(VEHICLE_PROFILE)}"
        ) from None


def parse_maxspeed_kmh(value: str | None) -> float | None:
    """`50`, `30 mph`, `50;30` (the lowest) -> km/h; None when unusable (`signals`, `none`, `FI:urban`)."""
    if not value:
        return None
    speeds = []
    for part in value.split(";"):
        part = part.strip().lower()
        factor = 1.609344 if part.endswith("mph") else 1.0
        number = part.removesuffix("mph").removesuffix("km/h").strip()
        try:
            speed = float(number) * factor
        except ValueError:
            continue
        if speed > 0:
            speeds.append(speed)
    return min(speeds) if speeds else None


def _oneway(tags, key: str = "oneway") -> int:
    """+1 forward only, -1 backward only, 0 both ways (for the given oneway key)."""
    value = tags.get(key)
    if value in YES:
        return 1
    if value in ("-1", "reverse"):
        return -1
    if value == "no":
        return 0
    if key == "oneway" and (
        tags.get("junction") in ("roundabout", "circular") or tags.get("highway") in ("motorway",)
    ):
        return 1
    return 0


def _directions(way: int) -> tuple[bool, bool]:
    return way >= 0, way <= 0


def _motor(tags, profile: str) -> Access | None:
    highway = tags.get("highway")
    if highway not in HIGHWAY_KMH or tags.get("area") == "yes":
        return None
    restrictions = [tags.get("access"), tags.get("vehicle"), tags.get("motor_vehicle")]
    restrictions.append(tags.get("hgv") if profile == "truck" else None)
    restrictions.append(tags.get("motorcycle") if profile == "motorcycle" else None)
    restrictions.append(tags.get("motorcar") if profile in ("car", "van") else None)
    # The most specific tag present wins: motor_vehicle=yes lifts access=no.
    for value in reversed(restrictions):
        if value is not None:
            if value in NO:
                return None
            break
    limit = parse_maxspeed_kmh(tags.get("maxspeed"))
    kmh = limit * URBAN_SHARE if limit is not None else HIGHWAY_KMH[highway]
    cap, share = MOTOR_PROFILE[profile]
    forward, backward = _directions(_oneway(tags))
    return Access(forward, backward, min(kmh * share, cap) / 3.6)


def _bicycle(tags) -> Access | None:
    highway = tags.get("highway")
    bicycle = tags.get("bicycle")
    if tags.get("area") == "yes" or bicycle in NO or bicycle == "use_sidepath":
        return None
    if highway == "cycleway":
        kind = "cycleway"
    elif highway in BICYCLE_ROADS:
        if tags.get("access") in NO and bicycle not in BICYCLE_YES:
            return None
        kind = "living_street" if highway == "living_street" else "road"
    elif highway in BICYCLE_SHARED and bicycle in BICYCLE_YES:
        kind = "shared"
    else:
        return None
    way = _oneway(tags, "oneway:bicycle") if "oneway:bicycle" in tags else None
    if way is None:
        cycleways = (tags.get(k) for k in ("cycleway", "cycleway:left", "cycleway:right", "cycleway:both"))
        contraflow = any(value in OPPOSITE for value in cycleways)
        way = 0 if contraflow or kind == "shared" else _oneway(tags)
    forward, backward = _directions(way)
    kmh = BICYCLE_KMH[kind]
    limit = parse_maxspeed_kmh(tags.get("maxspeed"))
    if limit is not None:
        kmh = min(kmh, limit)
    return Access(forward, backward, kmh / 3.6)


def way_access(tags) -> dict[str, Access]:
    """Profile -> Access for every profile that may use the way (empty: nobody routes on it).
    `tags` is any mapping with `.get` and `in` (pyosmium's TagList, a dict)."""
    out = {}
    bike = _bicycle(tags)
    if bike is not None and (bike.forward or bike.backward):
        out["bicycle"] = bike
    for profile in MOTOR_PROFILE:
        access = _motor(tags, profile)
        if access is not None:
            out[profile] = access
    return out
