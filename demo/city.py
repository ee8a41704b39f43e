"""The demo city, central Helsinki: its street file, extent, hubs, zones and local names."""

from functools import cache
from pathlib import Path

from demo.streets import StreetGraph, load_street_graph

CITY_PBF = Path(__file__).resolve().parent / "data" / "helsinki-center.osm.pbf"

ORG_SLUG = "helsinki-demo"
ORG_NAME = "Helsinki Demo Deliveries"
ORG_CURRENCY = "EUR"
ORG_TIMEZONE = "Europe/Helsinki"

# The extract's extent (min_lon, min_lat, max_lon, max_lat), cut into four quadrant zones.
BBOX = (24.935, 60.164, 24.953, 60.179)

# name, (lat, lon) to snap to the nearest named street node, quadrant zone name
HUB_SITES = (
    ("Töölönlahti hub", (60.1745, 24.9390), "Töölönlahti (NW)"),
    ("Kaisaniemi hub", (60.1735, 24.9475), "Kaisaniemi (NE)"),
    ("Kamppi hub", (60.1685, 24.9365), "Kamppi (SW)"),
    ("Kaartinkaupunki hub", (60.1665, 24.9480), "Kaartinkaupunki (SE)"),
)

# The retailers the demo 3PL delivers for (slug, name); the simulator places orders for them.
CLIENTS = (("kauppahalli-deli", "Kauppahalli Deli"), ("esplanadi-books", "Esplanadi Books"))

# vehicle type: share of the fleet (weights)
VEHICLE_MIX = {"bicycle": 14, "cargo_bike": 6, "scooter": 10, "motorcycle": 6, "car": 10, "van": 4}
OWNED_FLEET_SHARE = 0.3

FIRST_NAMES = (
    "Aino", "Aleksi", "Anni", "Antti", "Eero", "Elina", "Emilia", "Helmi", "Iida", "Ilkka",
    "Jani", "Johanna", "Juha", "Jukka", "Kaisa", "Kalle", "Katja", "Lauri", "Leena", "Liisa",
    "Markku", "Matti", "Mikko", "Minna", "Niko", "Noora", "Oona", "Otto", "Paula", "Pekka",
    "Riikka", "Sanna", "Sami", "Satu", "Tapio", "Tuomas", "Venla", "Ville",
)  # fmt: skip
LAST_NAMES = (
    "Heikkinen", "Hämäläinen", "Järvinen", "Karjalainen", "Koskinen", "Laaksonen", "Laine",
    "Lehtonen", "Lehtinen", "Mäkinen", "Mäkelä", "Nieminen", "Niemi", "Ojala", "Rantanen",
    "Salminen", "Salonen", "Turunen", "Virtanen", "Väisänen",
)  # fmt: skip


@cache
def city_graph() -> StreetGraph:
    """The demo city's street graph, read once per process."""
    return load_street_graph(CITY_PBF)
