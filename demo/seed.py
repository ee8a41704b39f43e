"""Seed the demo city: one organisation with its people, hubs, zones, drivers and an API key.

Idempotent: everything is found by its natural key (slug, username, hub and zone name, driver
phone) and created only when missing, so a second run adds nothing. Random choices come from
a seeded random.Random, so the city is the same on every machine; only passwords and the API
key are drawn from `secrets`.
"""

import json
import os
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.gis.geos import Polygon
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.geo import make_point
from demo import city
from demo.streets import StreetGraph
from dispatch.engine.geo import haversine_m
from dispatch.models import DispatchSettings, Order, ProofOfDelivery
from dispatch.services.dispatch_settings import update_dispatch_settings
from fleet import services as fleet_services
from fleet.models import Driver, DriverStatus, Hub, Zone
from identity.authentication import DEVICE_TOKEN_PREFIX, KEY_PREFIX, hash_secret, split_token
from identity.models import ApiKey, Client, DeviceToken, Organisation, Role, User
from identity.services import (
    create_api_key,
    create_client,
    issue_device_token,
    revoke_api_key,
    revoke_device_token,
    save_user,
)
from payouts.models import EarningRule, PriceList
from payouts.services.ledger import purge_organisation_ledger
from payouts.services.rules import publish_earning_rule, publish_price_list

DEFAULT_SEED = 20240601
SEED_ACTOR = Actor.system("demo-seed")
# The simulated couriers work one order at a time, so the demo's rounds do not batch; pickups
# farther than 3 km wait for a nearer courier.
DEMO_DISPATCH_RULES = {"batching": {"enabled": False}, "max_pickup_distance_m": 3000}
API_KEY_NAME = "demo-simulator"
ORG_USERS = (("admin", Role.ORG_ADMIN), ("dispatcher", Role.DISPATCHER))
STAFF_USERNAME = "staff"
COURIER_DEVICE_NAME = "demo courier phone"
MOTORISED = frozenset({"scooter", "motorcycle", "car", "van"})
PLATE_LETTERS = "ABCDEFGHIJKLMNOPRSTUVXYZ"


@dataclass(frozen=True)
class DriverPlan:
    """One demo driver as the seeded generator draws it, before anything is written."""

    name: str
    phone: str
    fleet_type: str
    vehicle_type: str
    plate: str
    node: int


@dataclass
class SeedResult:
    organisation: Organisation
    passwords: dict[str, str]
    api_key_plaintext: str
    api_key_created: bool
    created: dict[str, int] = field(default_factory=dict)
    # Each courier's phone: driver id -> device token (the simulator signs in with them).
    device_tokens: dict[str, str] = field(default_factory=dict)
    device_tokens_created: int = 0


def plan_drivers(*, graph: StreetGraph, count: int, rng: random.Random) -> list[DriverPlan]:
    """Draw `count` distinct drivers: names, unique phones and plates, and a street node each."""
    nodes = graph.nodes_in_bbox(city.BBOX)
    names = rng.sample([f"{f} {last}" for f in city.FIRST_NAMES for last in city.LAST_NAMES], count)
    phones = rng.sample(range(1_000_000, 10_000_000), count)
    types = rng.choices(list(city.VEHICLE_MIX), weights=list(city.VEHICLE_MIX.values()), k=count)
    plates: set[str] = set()
    plans = []
    for name, phone, vehicle_type in zip(names, phones, types, strict=True):
        plate = ""
        if vehicle_type in MOTORISED:
            while not plate or plate in plates:
                plate = "".join(rng.choices(PLATE_LETTERS, k=3)) + f"-{rng.randrange(1, 1000)}"
            plates.add(plate)
        plans.append(
            DriverPlan(
                name=name,
                phone=f"+35840{phone}",
                fleet_type="owned" if rng.random() < city.OWNED_FLEET_SHARE else "gig",
                vehicle_type=vehicle_type,
                plate=plate,
                node=int(rng.choice(nodes)),
            )
        )
    return plans


def street_address(graph: StreetGraph, node: int, rng: random.Random) -> str:
    """A plausible address: the node's street (or the nearest named one) and a house number."""
    return f"{graph.street_name(node) or 'Helsinki'} {rng.randrange(1, 60)}"


def nearest_named_node(graph: StreetGraph, lat: float, lon: float) -> int:
    """Hubs sit on a named street, so their address reads right."""
    named = [i for i in graph.nodes_within(lat, lon, min_m=0, max_m=500) if graph.names[i]]
    if not named:
        return graph.nearest(lat, lon)
    return min(named, key=lambda i: haversine_m(lat, lon, *graph.point(i)))


def quadrants(bbox: tuple[float, float, float, float]) -> dict[str, Polygon]:
    """The four quadrant polygons of bbox, keyed NW, NE, SW, SE."""
    min_lon, min_lat, max_lon, max_lat = bbox
    mid_lon, mid_lat = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
    boxes = {
        "NW": (min_lon, mid_lat, mid_lon, max_lat),
        "NE": (mid_lon, mid_lat, max_lon, max_lat),
        "SW": (min_lon, min_lat, mid_lon, mid_lat),
        "SE": (mid_lon, min_lat, max_lon, mid_lat),
    }
    polygons = {}
    for key, box in boxes.items():
        polygon = Polygon.from_bbox(box)
        polygon.srid = 4326
        polygons[key] = polygon
    return polygons


def _quadrant_of(lat: float, lon: float, bbox) -> str:
    min_lon, min_lat, max_lon, max_lat = bbox
    north = lat >= (min_lat + max_lat) / 2
    east = lon >= (min_lon + max_lon) / 2
    return ("N" if north else "S") + ("E" if east else "W")


def reset_demo_organisation() -> bool:
    """Delete the demo organisation and everything in it. True if there was one."""
    organisation = Organisation.objects.filter(slug=city.ORG_SLUG).first()
    if organisation is None:
        return False
    # The ledger, proofs and orders protect drivers, users and keys protect clients and the
    # organisation: remove them first.
    purge_organisation_ledger(organisation.id)
    ProofOfDelivery.objects.filter(order__organisation=organisation).delete()
    Order.objects.filter(organisation=organisation).delete()
    User.objects.filter(organisation=organisation).delete()
    ApiKey.objects.filter(organisation=organisation).delete()
    organisation.delete()
    return True


def _ensure_user(*, username: str, organisation: Organisation | None, role: str, password: str) -> bool:
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        user = User(username=username, organisation=organisation, role=role)
    elif user.organisation_id != (organisation.id if organisation else None):
        raise ValidationError({"username": f"User '{username}' exists outside the demo; not touching it."})
    user.role = role
    user.is_staff = user.is_superuser = role == Role.PLATFORM_STAFF
    user.set_password(password)
    user.save()
    return created


def courier_username(phone: str) -> str:
    return f"courier-{phone[-7:]}"


def _courier_account(driver: Driver) -> User:
    """The courier's own sign-in (a driver account, no password: their phone's device token
    signs them in), linked to their driver record."""
    username = courier_username(driver.phone)
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, organisation=driver.organisation, role=Role.DRIVER)
        user.set_unusable_password()
        save_user(user=user)
    elif user.organisation_id != driver.organisation_id or user.role != Role.DRIVER:
        raise ValidationError({"username": f"User '{username}' exists outside the demo; not touching it."})
    if driver.user_id != user.id:
        fleet_services.update_driver(
            driver_id=driver.id, organisation=driver.organisation, changes={"user": user}, actor=SEED_ACTOR
        )
    return user


def _valid_device_token(user: User, plaintext: str) -> bool:
    parsed = split_token(plaintext or "", DEVICE_TOKEN_PREFIX)
    if parsed is None:
        return False
    prefix, secret = parsed
    device = DeviceToken.objects.filter(user=user, prefix=prefix, name=COURIER_DEVICE_NAME).first()
    return bool(device and device.is_active and device.secret_hash == hash_secret(secret))


def _courier_phone(user: User, existing: str) -> tuple[str, bool]:
    """The courier's device token: the saved one while it still signs in, else a new one
    (older demo phones of theirs revoked). Returns (token, whether it is new)."""
    if _valid_device_token(user, existing):
        return existing, False
    for old in DeviceToken.objects.filter(user=user, name=COURIER_DEVICE_NAME, revoked_at=None):
        revoke_device_token(device_token=old, actor=Actor.for_user(user))
    return issue_device_token(user=user, name=COURIER_DEVICE_NAME).plaintext, True


def _valid_demo_key(organisation: Organisation, plaintext: str) -> bool:
    """Whether a saved key is still an active demo-simulator key of this organisation."""
    if not plaintext.startswith(KEY_PREFIX):
        return False
    prefix, _, secret = plaintext[len(KEY_PREFIX) :].partition("_")
    api_key = ApiKey.objects.filter(organisation=organisation, prefix=prefix, name=API_KEY_NAME).first()
    return bool(api_key and api_key.is_active and api_key.secret_hash == hash_secret(secret))


@transaction.atomic
def seed_demo_city(
    *,
    graph: StreetGraph,
    driver_count: int = 50,
    seed: int = DEFAULT_SEED,
    password: str | None = None,
    existing_api_key: str = "",
    existing_device_tokens: dict[str, str] | None = None,
    reset: bool = False,
    now: datetime | None = None,
) -> SeedResult:
    """Create (or complete) the demo city, all of it or nothing.

    Passwords are set on every run (from `password`, else freshly random) so the printed ones
    always work. The API key in `existing_api_key` is kept if it is still valid; otherwise
    older demo-simulator keys are revoked and a new one is issued. Likewise each courier's
    device token in `existing_device_tokens` (driver id -> token).

    Couriers are left ACTIVE and offline, where they were last seen: the simulator signs
    them in with their phones and they go online through the driver API.
    """
    existing_device_tokens = existing_device_tokens or {}
    device_tokens: dict[str, str] = {}
    device_tokens_created = 0
    now = now or timezone.now()
    rng = random.Random(seed)
    created = dict.fromkeys(("organisation", "clients", "users", "hubs", "zones", "drivers"), 0)
    if reset:
        reset_demo_organisation()

    organisation, org_created = Organisation.objects.get_or_create(
        slug=city.ORG_SLUG,
        defaults={
            "name": city.ORG_NAME,
            "currency": city.ORG_CURRENCY,
            "kind": Organisation.Kind.THREE_PL,
            "timezone": city.ORG_TIMEZONE,
        },
    )
    created["organisation"] = int(org_created)

    passwords = {}
    for username, role in (*ORG_USERS, (STAFF_USERNAME, Role.PLATFORM_STAFF)):
        passwords[username] = password or secrets.token_urlsafe(12)
        org = None if role == Role.PLATFORM_STAFF else organisation
        created["users"] += _ensure_user(
            username=username, organisation=org, role=role, password=passwords[username]
        )

    polygons = quadrants(city.BBOX)
    zones: dict[str, Zone] = {}  # by quadrant key
    hubs = []
    for slug, name in city.CLIENTS:
        if not Client.objects.filter(organisation=organisation, slug=slug).exists():
            create_client(organisation=organisation, slug=slug, name=name)
            created["clients"] += 1

    for hub_name, (lat, lon), zone_name in city.HUB_SITES:
        quadrant = _quadrant_of(lat, lon, city.BBOX)
        zone = Zone.objects.filter(organisation=organisation, name=zone_name).first()
        if zone is None:
            zone = fleet_services.create_zone(
                organisation=organisation, name=zone_name, area=polygons[quadrant], h3_resolution=9
            )
            created["zones"] += 1
        zones[quadrant] = zone

        node = nearest_named_node(graph, lat, lon)
        address = street_address(graph, node, rng)
        hub = Hub.objects.filter(organisation=organisation, name=hub_name).first()
        if hub is None:
            node_lat, node_lon = graph.point(node)
            hub = fleet_services.create_hub(
                organisation=organisation,
                name=hub_name,
                address=address,
                location=make_point(lat=node_lat, lon=node_lon),
            )
            created["hubs"] += 1
        hubs.append(hub)

    existing = {d.phone: d for d in Driver.objects.filter(organisation=organisation)}
    for plan in plan_drivers(graph=graph, count=driver_count, rng=rng):
        lat, lon = graph.point(plan.node)
        driver = existing.get(plan.phone)
        if driver is None:
            hub = min(hubs, key=lambda h: haversine_m(h.location.y, h.location.x, lat, lon))
            driver = fleet_services.create_driver(
                organisation=organisation,
                name=plan.name,
                phone=plan.phone,
                fleet_type=plan.fleet_type,
                vehicle_type=plan.vehicle_type,
                plate=plan.plate,
                hub=hub,
                home_zone=zones[_quadrant_of(lat, lon, city.BBOX)],
                actor=SEED_ACTOR,
            )
            created["drivers"] += 1
        if driver.status == DriverStatus.APPLICANT:
            fleet_services.change_driver_status(
                driver_id=driver.id,
                organisation=organisation,
                action="approve",
                actor=SEED_ACTOR,
                reason="Demo driver: seeded as already verified.",
            )
            driver.refresh_from_db()
        user = _courier_account(driver)
        token, new = _courier_phone(user, existing_device_tokens.get(str(driver.id), ""))
        device_tokens[str(driver.id)] = token
        device_tokens_created += new
        if driver.last_location is None:
            fleet_services.record_ping(
                driver=driver,
                ping=fleet_services.PingInput(lat=lat, lon=lon, recorded_at=now, accuracy_m=5.0),
            )

    if not DispatchSettings.objects.filter(organisation=organisation).exists():
        update_dispatch_settings(organisation=organisation, rules=DEMO_DISPATCH_RULES, actor=SEED_ACTOR)
    seed_tariffs(organisation)

    api_key_created = not (existing_api_key and _valid_demo_key(organisation, existing_api_key))
    plaintext = existing_api_key
    if api_key_created:
        for old in ApiKey.objects.filter(organisation=organisation, name=API_KEY_NAME, revoked_at=None):
            revoke_api_key(api_key=old)
        plaintext = create_api_key(organisation=organisation, name=API_KEY_NAME).plaintext
    return SeedResult(
        organisation=organisation,
        passwords=passwords,
        api_key_plaintext=plaintext,
        api_key_created=api_key_created,
        created=created,
        device_tokens=device_tokens,
        device_tokens_created=device_tokens_created,
    )


# What the demo's couriers earn and its clients pay (minor units of EUR), from a fixed date.
DEMO_TARIFFS_FROM = datetime(2020, 1, 1, tzinfo=UTC)
DEMO_EARNING_RULE = {
    "base_minor": 250,
    "per_km_minor": 60,
    "waiting_threshold_s": 300,
    "waiting_per_minute_minor": 20,
    "guaranteed_hourly_minor": 1200,
    # Friday and Saturday evenings pay 20 % more (Europe/Helsinki).
    "surge": [{"days": [4, 5], "start": "17:00", "end": "21:00", "percent": 20}],
}
DEMO_PRICE = {"base_minor": 590, "per_km_minor": 90}


def seed_tariffs(organisation: Organisation) -> None:
    """The demo's earnings rule and price lists (the organisation's and one per client),
    published once through the settlement services."""
    if not EarningRule.objects.filter(organisation=organisation).exists():
        publish_earning_rule(organisation=organisation, effective_from=DEMO_TARIFFS_FROM, **DEMO_EARNING_RULE)
    for client in [None, *Client.objects.filter(organisation=organisation).order_by("slug")]:
        if not PriceList.objects.filter(organisation=organisation, client=client).exists():
            publish_price_list(
                organisation=organisation, client=client, effective_from=DEMO_TARIFFS_FROM, **DEMO_PRICE
            )


def read_api_key_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def write_api_key_file(path: Path, plaintext: str) -> None:
    """Write the key readable by its owner only (mode 600), replacing any older one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(plaintext + "\n")
    os.chmod(path, 0o600)


def read_device_tokens_file(path: Path) -> dict[str, str]:
    """The couriers' device tokens (driver id -> token) saved by seed_demo; {} if none."""
    try:
        tokens = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in tokens.items()} if isinstance(tokens, dict) else {}


def write_device_tokens_file(path: Path, tokens: dict[str, str]) -> None:
    """Secrets, like the API key: readable by their owner only."""
    write_api_key_file(path, json.dumps(tokens, indent=1, sort_keys=True))
