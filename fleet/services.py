"""Writes for the fleet: driver status decisions, going online, GPS pings, zones, drivers."""

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import h3
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from core.actors import Actor
from core.db import lock
from core.events import payload_value, record_event
from core.exceptions import InvalidTransition
from core.geo import coordinate_errors, make_point, point_as_dict
from core.history import attribute_change
from fleet.models import (
    VEHICLE_DEFAULT_CAPACITY,
    Driver,
    DriverStatus,
    DriverStatusChange,
    Hub,
    LocationPing,
    Vehicle,
    Zone,
)
from identity.models import Organisation

DRIVER_STATUS_ACTIONS = {
    "approve": DriverStatus.ACTIVE,
    "deny_access": DriverStatus.ACCESS_DENIED,
    "suspend": DriverStatus.SUSPENDED,
    "reinstate": DriverStatus.ACTIVE,
    "offboard": DriverStatus.OFFBOARDED,
}
# Pings stamped further in the future than this are refused: the phone's clock is wrong.
MAX_PING_CLOCK_SKEW = timedelta(minutes=2)
# Pings older than this are refused: a phone's buffer from long ago says nothing about now,
# and a geofence must not decide on it.
MAX_PING_AGE = timedelta(hours=1)


def driver_event_payload(driver: Driver) -> dict:
    return {
        "driver_id": str(driver.id),
        "name": driver.name,
        "status": driver.status,
        "fleet_type": driver.fleet_type,
        "is_online": driver.is_online,
        "location": point_as_dict(driver.last_location),
    }


@transaction.atomic
def change_driver_status(
    *,
    driver_id,
    organisation: Organisation,
    action: str,
    actor: Actor,
    reason: str,
    inputs: dict | None = None,
    is_override: bool = False,
) -> DriverStatusChange:
    """Apply a status decision about a driver and record it with its inputs and reason.

    The reason is shown to the driver, so it must be plain language; it is required.
    """
    if action not in DRIVER_STATUS_ACTIONS:
        raise ValidationError({"action": f"Unknown action '{action}'."})
    if not reason.strip():
        raise ValidationError({"reason": "A decision about a driver needs a reason they can read."})
    driver = lock(Driver.objects).get(id=driver_id, organisation=organisation)
    from_status = driver.status
    try:
        getattr(driver, action)()
    except TransitionNotAllowed as exc:
        raise InvalidTransition(
            f"Cannot {action.replace('_', ' ')} a driver who is {from_status}.",
            current_status=from_status,
            action=action,
        ) from exc
    attribute_change(driver, actor, f"{action}: {reason.strip()}")
    driver.save()
    return _record_status_change(
        driver=driver,
        organisation=organisation,
        from_status=from_status,
        actor=actor,
        reason=reason,
        inputs=inputs or {},
        is_override=is_override,
    )


@transaction.atomic
def record_driver_decision(
    *, driver_id, organisation: Organisation, actor: Actor, reason: str, inputs: dict
) -> DriverStatusChange:
    """An automated decision about a driver that leaves their status as it is (work taken away
    from them, say), stored like a status decision: with its inputs and a plain reason they
    can read (and contest) among their decisions."""
    if not reason.strip():
        raise ValidationError({"reason": "A decision about a driver needs a reason they can read."})
    driver = Driver.objects.get(id=driver_id, organisation=organisation)
    return DriverStatusChange.objects.create(
        driver=driver,
        from_status=driver.status,
        to_status=driver.status,
        reason=reason.strip(),
        inputs=inputs,
        **actor.as_fields(),
    )


def _record_status_change(
    *,
    driver: Driver,
    organisation: Organisation,
    from_status: str,
    actor: Actor,
    reason: str,
    inputs: dict,
    is_override: bool,
) -> DriverStatusChange:
    """The decision row the driver can read and contest, and its domain event."""
    change = DriverStatusChange.objects.create(
        driver=driver,
        from_status=from_status,
        to_status=driver.status,
        reason=reason.strip(),
        inputs=inputs,
        is_override=is_override,
        **actor.as_fields(),
    )
    record_event(
        organisation=organisation,
        event_type="driver.status_changed",
        subject_type="driver",
        subject_id=driver.id,
        actor=actor,
        reason=change.reason,
        payload={**driver_event_payload(driver), "from_status": from_status, "is_override": is_override},
    )
    return change


@transaction.atomic
def set_driver_online(*, driver_id, organisation: Organisation, online: bool, actor: Actor) -> Driver:
    driver = lock(Driver.objects).get(id=driver_id, organisation=organisation)
    if online and driver.status != DriverStatus.ACTIVE:
        raise ValidationError({"is_online": f"A driver who is {driver.status} cannot go online."})
    if driver.is_online != online:
        driver.is_online = online
        attribute_change(driver, actor)
        driver.save(update_fields=["is_online", "updated_at"])
        record_event(
            organisation=organisation,
            event_type="driver.online" if online else "driver.offline",
            subject_type="driver",
            subject_id=driver.id,
            actor=actor,
            payload=driver_event_payload(driver),
        )
    return driver


@dataclass(frozen=True)
class PingInput:
    lat: float
    lon: float
    recorded_at: datetime
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None


def validate_ping(ping: PingInput, *, now: datetime) -> None:
    """Raise ValidationError naming the field of a ping that cannot be true."""
    errors = coordinate_errors(lat=ping.lat, lon=ping.lon)
    if ping.recorded_at.tzinfo is None:
        errors["recorded_at"] = "Must carry a UTC offset."
    elif ping.recorded_at > now + MAX_PING_CLOCK_SKEW:
        errors["recorded_at"] = (
            f"Is more than {int(MAX_PING_CLOCK_SKEW.total_seconds())} s in the future: check the phone's clock."
        )
    elif ping.recorded_at < now - MAX_PING_AGE:
        errors["recorded_at"] = f"Is more than {int(MAX_PING_AGE.total_seconds() // 60)} minutes old."
    if ping.accuracy_m is not None and ping.accuracy_m < 0:
        errors["accuracy_m"] = "Must not be negative."
    if ping.speed_mps is not None and ping.speed_mps < 0:
        errors["speed_mps"] = "Must not be negative."
    if ping.heading_deg is not None and not 0 <= ping.heading_deg < 360:
        errors["heading_deg"] = "Must be in [0, 360)."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def record_pings(*, driver: Driver, pings: list[PingInput]) -> None:
    """Store GPS fixes in one insert; the driver's last position moves only forward in time.

    A retried ping (same driver, same recorded_at) is stored once.
    """
    now = timezone.now()
    for ping in pings:
        validate_ping(ping, now=now)
    LocationPing.objects.bulk_create(
        [
            LocationPing(
                driver=driver,
                recorded_at=ping.recorded_at,
                location=make_point(lat=ping.lat, lon=ping.lon),
                accuracy_m=ping.accuracy_m,
                speed_mps=ping.speed_mps,
                heading_deg=ping.heading_deg,
            )
            for ping in pings
        ],
        ignore_conflicts=True,
    )
    latest = max(pings, key=lambda ping: ping.recorded_at)
    point = make_point(lat=latest.lat, lon=latest.lon)
    newer = Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=latest.recorded_at)
    if Driver.objects.filter(newer, id=driver.id).update(
        last_location=point, last_seen_at=latest.recorded_at
    ):
        driver.last_location, driver.last_seen_at = point, latest.recorded_at


def record_ping(*, driver: Driver, ping: PingInput) -> LocationPing:
    """Store one GPS fix (record_pings) and return it as stored."""
    record_pings(driver=driver, pings=[ping])
    return LocationPing.objects.get(driver=driver, recorded_at=ping.recorded_at)


# A zone is a service area, not a country: more cells than this is a mistake in the input
# (and would make every read of the zone heavy).
MAX_ZONE_CELLS = 50_000
MAX_ZONE_LONGITUDE_SPAN = 180


def h3_cells_for(area: MultiPolygon, resolution: int) -> list[str]:
    """The H3 cells whose centres fall inside the area; refuses an area too large for them."""
    if not 0 <= resolution <= 15:
        raise ValidationError({"h3_resolution": "Must be between 0 and 15."})
    metric = area.transform(3857, clone=True)
    latitude = math.radians(area.centroid.y)
    area_m2 = metric.area * math.cos(latitude) ** 2  # Web Mercator inflates area by 1/cos²(lat)
    estimate = area_m2 / h3.average_hexagon_area(resolution, unit="m^2")
    if estimate > MAX_ZONE_CELLS:
        raise ValidationError(
            {
                "area": f"Covers about {int(estimate)} H3 cells at resolution {resolution}; at most "
                f"{MAX_ZONE_CELLS}. Use a smaller area or a coarser resolution."
            }
        )
    cells = sorted(h3.geo_to_cells(json.loads(area.geojson), resolution))
    if not cells:
        # Demand, supply and matching read a zone by its cells: one with none would be invisible.
        raise ValidationError(
            {
                "area": f"Covers no H3 cell at resolution {resolution}; use a larger area or a finer resolution."
            }
        )
    return cells


def _as_multipolygon(area: Polygon | MultiPolygon) -> MultiPolygon:
    if isinstance(area, Polygon):
        area = MultiPolygon(area, srid=4326)
    if not isinstance(area, MultiPolygon):
        raise ValidationError({"area": "Must be a Polygon or MultiPolygon."})
    if area.empty or not area.valid:
        raise ValidationError({"area": f"Invalid polygon: {area.valid_reason}."})
    for polygon in area:
        west, _, east, _ = polygon.extent
        if east - west >= MAX_ZONE_LONGITUDE_SPAN:
            # GEOS reads such a ring the long way round the globe, H3 the short way across the
            # antimeridian: the zone's map and its cells would disagree.
            raise ValidationError(
                {
                    "area": f"Each polygon must span less than {MAX_ZONE_LONGITUDE_SPAN}° of longitude. "
                    "A zone across the antimeridian is sent as a MultiPolygon split at ±180°."
                }
            )
    return area


def check_hub(hub: Hub | Zone) -> None:
    """Everything a hub's (or zone's) save checks, without saving: its name is unique in its
    organisation (checked first for a clear answer) and its fields are valid."""
    model = type(hub)
    taken = model.objects.filter(organisation=hub.organisation_id, name=hub.name)
    if taken.exclude(pk=hub.pk).exists():
        raise ValidationError({"name": f"A {model._meta.verbose_name} with this name already exists."})
    hub.full_clean()


def check_zone(zone: Zone) -> None:
    """Everything a zone's save checks, without saving; its H3 cells follow its area and
    resolution."""
    zone.area = _as_multipolygon(zone.area)
    zone.h3_cells = h3_cells_for(zone.area, zone.h3_resolution)
    check_hub(zone)


def _save_named(instance: Hub | Zone) -> Hub | Zone:
    """Save a checked hub or zone, naming `name` when a concurrent save took it first."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        label = type(instance)._meta.verbose_name
        raise ValidationError({"name": f"A {label} with this name already exists."}) from exc
    return instance


@transaction.atomic
def create_zone(
    *, organisation: Organisation, name: str, area: Polygon | MultiPolygon, h3_resolution: int = 9
) -> Zone:
    zone = Zone(
        organisation=organisation, name=name, area=_as_multipolygon(area), h3_resolution=h3_resolution
    )
    check_zone(zone)
    return _save_named(zone)


@transaction.atomic
def update_zone(*, zone: Zone, **changes) -> Zone:
    """Rename, redraw or re-resolve a zone; its H3 cells follow its area and resolution."""
    if "area" in changes:
        changes["area"] = _as_multipolygon(changes["area"])
    for name, value in changes.items():
        setattr(zone, name, value)
    check_zone(zone)
    return _save_named(zone)


@transaction.atomic
def create_hub(
    *, organisation: Organisation, name: str, address: str, location, is_active: bool = True
) -> Hub:
    hub = Hub(organisation=organisation, name=name, address=address, location=location, is_active=is_active)
    check_hub(hub)
    return _save_named(hub)


@transaction.atomic
def update_hub(*, hub: Hub, **changes) -> Hub:
    for name, value in changes.items():
        setattr(hub, name, value)
    check_hub(hub)
    return _save_named(hub)


def check_unused(place: Hub | Zone) -> None:
    """A hub or zone that drivers or orders name stays (deactivate or redraw it instead):
    deleting it would quietly unassign them."""
    if isinstance(place, Hub):
        users = {"drivers": place.drivers.count(), "orders": place.orders.count()}
    else:
        users = {
            "drivers living in it": place.home_drivers.count(),
            "drivers preferring it": place.preferring_drivers.count(),
        }
    named = [f"{count} {what}" for what, count in users.items() if count]
    if named:
        label = place._meta.verbose_name
        raise ValidationError({label: f"This {label} is used by {', '.join(named)}."})


@transaction.atomic
def delete_hub_or_zone(place: Hub | Zone) -> None:
    """Delete a hub or zone nothing uses any more. Its row is locked first: a driver or order
    taking it up meanwhile waits, then fails, instead of being quietly unassigned."""
    place = lock(type(place).objects.filter(pk=place.pk)).get()
    check_unused(place)
    place.delete()


def check_driver(driver: Driver) -> None:
    """Everything a driver's save checks, without saving: their hub, home zone and sign-in
    are the organisation's, their fields valid, their phone free in the organisation."""
    for name in ("hub", "home_zone", "user"):
        related = getattr(driver, name)
        if related is not None and related.organisation_id != driver.organisation_id:
            raise ValidationError({name: "Must be in the driver's organisation."})
    driver.full_clean(exclude=["status"])


def check_preferred_zones(organisation: Organisation, zones) -> None:
    if any(zone.organisation_id != organisation.id for zone in zones):
        raise ValidationError({"preferred_zones": "Must be in the driver's organisation."})


@transaction.atomic
def create_driver(
    *,
    organisation: Organisation,
    name: str,
    phone: str,
    fleet_type: str,
    vehicle_type: str,
    plate: str = "",
    vin: str = "",
    email: str = "",
    hub=None,
    home_zone: Zone | None = None,
    user=None,
    actor: Actor,
) -> Driver:
    """A new driver (an APPLICANT until onboarding approves them) with their vehicle; recorded
    as `driver.created`, so the audit log and webhooks know who added them."""
    driver = Driver(
        organisation=organisation,
        name=name,
        phone=phone,
        email=email,
        fleet_type=fleet_type,
        hub=hub,
        home_zone=home_zone,
        user=user,
    )
    check_driver(driver)
    attribute_change(driver, actor)
    driver.save()
    if home_zone is not None:
        driver.preferred_zones.add(home_zone)
    kilograms, litres = VEHICLE_DEFAULT_CAPACITY[vehicle_type]
    vehicle = Vehicle(
        organisation=organisation,
        driver=driver,
        type=vehicle_type,
        capacity_kg=Decimal(kilograms),
        capacity_litres=litres,
        plate=plate,
        vin=vin,
    )
    vehicle.full_clean()
    vehicle.save()
    record_event(
        organisation=organisation,
        event_type="driver.created",
        subject_type="driver",
        subject_id=driver.id,
        actor=actor,
        payload={**driver_event_payload(driver), "vehicle_type": vehicle_type},
    )
    return driver


# What may be edited about a driver outside their status decisions (fleet.services.change_
# driver_status and force_driver_status own the status).
DRIVER_EDITABLE_FIELDS = (
    "name",
    "phone",
    "email",
    "fleet_type",
    "hub",
    "home_zone",
    "user",
    "preferred_zones",
)


@transaction.atomic
def update_driver(*, driver_id, organisation: Organisation, changes: dict, actor: Actor) -> Driver:
    """Edit a driver's details; recorded as `driver.updated` with each field old -> new and
    in the driver's history with who did it. Hubs and zones must be the organisation's."""
    unknown = set(changes) - set(DRIVER_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Cannot be changed here."))
    changes = dict(changes)
    driver = lock(Driver.objects).get(id=driver_id, organisation=organisation)
    zones = changes.pop("preferred_zones", None)
    if zones is not None:
        check_preferred_zones(organisation, zones)
    diff = {}
    for name, value in changes.items():
        old = payload_value(getattr(driver, name))
        if old != payload_value(value):
            diff[name] = {"old": old, "new": payload_value(value)}
            setattr(driver, name, value)
    if zones is not None:
        old = payload_value(driver.preferred_zones)
        if old != payload_value(zones):
            diff["preferred_zones"] = {"old": old, "new": payload_value(zones)}
    if not diff:
        return driver
    check_driver(driver)
    attribute_change(driver, actor)
    driver.save()
    if zones is not None:
        driver.preferred_zones.set(zones)
    record_event(
        organisation=organisation,
        event_type="driver.updated",
        subject_type="driver",
        subject_id=driver.id,
        actor=actor,
        payload={**driver_event_payload(driver), "changes": diff},
    )
    return driver


@transaction.atomic
def force_driver_status(
    *, driver_id, organisation: Organisation, to_status: str, actor: Actor, reason: str
) -> DriverStatusChange:
    """A human override (admin) of a driver's status, outside the state machine, audited.

    This is how a reviewer reverses an automated decision (e.g. lifts an ACCESS_DENIED after
    an appeal); the reason is shown to the driver.
    """
    if to_status not in DriverStatus.values:
        raise ValidationError({"to_status": f"Unknown status '{to_status}'."})
    if not reason.strip():
        raise ValidationError({"reason": "An override needs a reason the driver can read."})
    driver = lock(Driver.objects).get(id=driver_id, organisation=organisation)
    from_status = driver.status
    online = driver.is_online and to_status == DriverStatus.ACTIVE
    Driver.objects.filter(id=driver.id).update(status=to_status, is_online=online)
    driver.refresh_from_db()
    attribute_change(driver, actor, f"override: {reason.strip()}")
    driver.save(update_fields=["updated_at"])  # the history row of the override
    return _record_status_change(
        driver=driver,
        organisation=organisation,
        from_status=from_status,
        actor=actor,
        reason=reason,
        inputs={"override": True},
        is_override=True,
    )


VEHICLE_EDITABLE_FIELDS = ("type", "capacity_kg", "capacity_litres", "plate", "vin")


@transaction.atomic
def update_vehicle(*, vehicle_id, organisation: Organisation, changes: dict, actor: Actor) -> Vehicle:
    """Edit a driver's vehicle (onboarding sets type and capacity from the vehicle photo);
    recorded as `driver.updated` with each field old -> new."""
    unknown = set(changes) - set(VEHICLE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Cannot be changed here."))
    vehicle = lock(Vehicle.objects).select_related("driver").get(id=vehicle_id, organisation=organisation)
    diff = {}
    for name, value in changes.items():
        old = payload_value(getattr(vehicle, name))
        if old != payload_value(value):
            diff[name] = {"old": old, "new": payload_value(value)}
            setattr(vehicle, name, value)
    if not diff:
        return vehicle
    vehicle.full_clean()
    vehicle.save()
    record_event(
        organisation=organisation,
        event_type="driver.updated",
        subject_type="driver",
        subject_id=vehicle.driver_id,
        actor=actor,
        payload={**driver_event_payload(vehicle.driver), "changes": {"vehicle": diff}},
    )
    return vehicle


def set_performance_score(*, driver_id, score: float) -> None:
    """Store the scorecards' performance score on the driver, which matching reads. A derived
    figure, updated with every scorecard change: no event or history row of its own (the
    scorecard keeps what it was computed from)."""
    if not 0.0 <= score <= 1.0:
        raise ValidationError({"performance_score": "Must be between 0 and 1."})
    Driver.objects.filter(id=driver_id).update(performance_score=score)
