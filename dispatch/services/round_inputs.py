"""What a dispatch round sees: the organisation's open orders and available drivers, read from
the database and turned into the engine's plain dataclasses (dispatch.engine.model).

The engine works on string ids and epoch seconds; `RoundInputs` keeps the rows to map its
answer back. Per-order exclusions (drivers who declined an order or let its offer lapse) are
expressed through the engine's own (client, driver) exclusion rule: each such order gets a
client key of its own, and the organisation's client rules are copied onto that key.

A round reads plain rows (DriverRow, OrderRow, StopRow: places as lon/lat read by the
database), not model instances: building thousands of instances and reading their points with
GEOS was most of a round's load. The rows carry the model's attribute names, so one mapping
(to_engine_driver, to_engine_order, stop_from_row) serves rows and model instances alike.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.gis.geos import Point
from django.db.models import Exists, OuterRef, QuerySet

from core.geo import WGS84, LonLat, PointX, PointY
from dispatch.engine import model as engine
from dispatch.engine.assignment import can_still_take
from dispatch.engine.rules import Rules
from dispatch.models import DRIVER_HOLDS_STATUSES, Offer, OfferStatus, Order, OrderStatus, Route, Stop
from dispatch.travel import travel_times
from fleet.models import Driver, DriverStatus, Vehicle, Zone
from identity.models import Organisation

# No performance model yet: every driver counts as fully reliable, so the high-value score
# rules neither penalise nor exclude anyone until one exists.
NEUTRAL_SCORE = 1.0
ON_BOARD_STATUSES = (OrderStatus.PICKED_UP, OrderStatus.ARRIVED_DROPOFF)


def epoch_s(moment: datetime) -> float:
    return moment.timestamp()


class VehicleRow(NamedTuple):
    type: str
    capacity_kg: Decimal
    capacity_litres: int


class DriverRow(NamedTuple):
    """A driver as a round reads them (driver_rows): Driver's attribute names, the position as
    plain lon/lat, the active vehicle (None without one) and the preferred zones' ids."""

    id: Any
    name: str
    fleet_type: str
    performance_score: float | None
    last_location: LonLat | None
    has_pending_offer: bool
    active_vehicle: VehicleRow | None
    zone_ids: frozenset[str]


class ClientRef(NamedTuple):
    slug: str


class OrderRow(NamedTuple):
    """An order as a round reads it (order_rows): Order's attribute names, the places as plain
    lon/lat, the client as its slug only."""

    id: Any
    external_ref: str
    status: str
    driver_id: Any
    client_id: Any
    client: ClientRef | None
    hub_id: Any
    pickup_location: LonLat
    pickup_window_start: datetime
    pickup_window_end: datetime
    dropoff_location: LonLat
    dropoff_window_start: datetime
    dropoff_window_end: datetime
    weight_kg: Decimal
    volume_litres: Decimal
    declared_value_minor: int
    priority: int


class OrderLoad(NamedTuple):
    weight_kg: Decimal
    volume_litres: Decimal


class StopRow(NamedTuple):
    """A route's open stop as a round reads it (route_stops): Stop's attribute names, its order
    as the weight and volume it carries."""

    order_id: Any
    kind: str
    location: LonLat
    window_start: datetime
    window_end: datetime
    service_s: int
    order: OrderLoad


@dataclass
class RoundInputs:
    now: datetime
    drivers: list[engine.Driver]
    orders: list[engine.Order]
    rules: Rules
    driver_rows: dict[str, DriverRow] = field(default_factory=dict)
    order_rows: dict[str, OrderRow] = field(default_factory=dict)
    left_out_drivers: dict[str, str] = field(default_factory=dict)  # driver name -> why
    excluded: dict[str, set[str]] = field(default_factory=dict)  # order id -> driver ids


def _stop(order: OrderRow, kind: str) -> engine.Stop:
    if kind == "pickup":
        point, opens, closes = order.pickup_location, order.pickup_window_start, order.pickup_window_end
        kg, litres = float(order.weight_kg), float(order.volume_litres)
    else:
        point, opens, closes = order.dropoff_location, order.dropoff_window_start, order.dropoff_window_end
        kg, litres = -float(order.weight_kg), -float(order.volume_litres)
    return engine.Stop(
        str(order.id), kind, point.y, point.x, epoch_s(opens), epoch_s(closes), 0.0, kg, litres
    )


def stop_from_row(stop: Stop | StopRow) -> engine.Stop:
    """A route's stop (a row, or an instance with its order selected) as the engine sees it."""
    sign = 1 if stop.kind == Stop.Kind.PICKUP else -1
    return engine.Stop(
        str(stop.order_id),
        stop.kind,
        stop.location.y,
        stop.location.x,
        epoch_s(stop.window_start),
        epoch_s(stop.window_end),
        float(stop.service_s),
        sign * float(stop.order.weight_kg),
        sign * float(stop.order.volume_litres),
    )


def route_stops(driver_ids: list) -> dict:
    """Driver id -> the open stops of their active route, in order (StopRow)."""
    out: dict = {}
    rows = (
        Stop.objects.filter(
            route__driver_id__any=driver_ids, route__status=Route.Status.ACTIVE, completed_at=None
        )
        .order_by("route_id", "sequence")
        .values_list(
            "route__driver_id",
            "order_id",
            "kind",
            PointX("location"),
            PointY("location"),
            "window_start",
            "window_end",
            "service_s",
            "order__weight_kg",
            "order__volume_litres",
        )
    )
    for driver_id, order_id, kind, x, y, opens, closes, service_s, kg, litres in rows:
        out.setdefault(driver_id, []).append(
            StopRow(order_id, kind, LonLat(x, y), opens, closes, service_s, OrderLoad(kg, litres))
        )
    return out


def held_plan(
    held: list[OrderRow], stops: list[StopRow] | None = None
) -> tuple[float, float, tuple[engine.Stop, ...]]:
    """What a driver carries now (kg, litres) and the rest of their plan: their route's open
    stops in its order when it holds every order they hold (dispatch.services.routes keeps it),
    else pickups of the orders not yet picked up (by pickup window), then every drop-off (by
    promise)."""
    on_board = [o for o in held if o.status in ON_BOARD_STATUSES]
    if stops and {s.order_id for s in stops} == {o.id for o in held}:
        route = tuple(stop_from_row(s) for s in stops)
    else:
        to_pick = sorted(
            (o for o in held if o.status not in ON_BOARD_STATUSES), key=lambda o: o.pickup_window_start
        )
        drops = sorted(held, key=lambda o: o.dropoff_window_end)
        route = tuple(_stop(o, "pickup") for o in to_pick) + tuple(_stop(o, "dropoff") for o in drops)
    kg = sum(float(o.weight_kg) for o in on_board)
    litres = sum(float(o.volume_litres) for o in on_board)
    return kg, litres, route


def driver_rows(drivers: QuerySet, *, organisation_id) -> list[DriverRow]:
    """The drivers as DriverRow, by id: their columns, active vehicle, preferred zones and
    whether they have an offer to answer, in a few set-based queries."""
    pending = Offer.objects.filter(driver=OuterRef("pk"), status=OfferStatus.PENDING)
    rows = list(
        drivers.annotate(has_pending_offer=Exists(pending))
        .order_by("id")
        .values_list(
            "id",
            "name",
            "fleet_type",
            "performance_score",
            PointX("last_location"),
            PointY("last_location"),
            "has_pending_offer",
        )
    )
    ids = drivers.values("id")
    vehicles = {
        driver_id: VehicleRow(*vehicle)
        for driver_id, *vehicle in Vehicle.objects.filter(
            organisation_id=organisation_id, is_active=True, driver__in=ids
        ).values_list("driver_id", "type", "capacity_kg", "capacity_litres")
    }
    zones: dict = {}
    for driver_id, zone_id in Driver.preferred_zones.through.objects.filter(driver__in=ids).values_list(
        "driver_id", "zone_id"
    ):
        zones.setdefault(driver_id, set()).add(str(zone_id))
    return [
        DriverRow(
            driver_id,
            name,
            fleet_type,
            score,
            None if x is None else LonLat(x, y),
            pending_offer,
            vehicles.get(driver_id),
            frozenset(zones.get(driver_id, ())),
        )
        for driver_id, name, fleet_type, score, x, y, pending_offer in rows
    ]


def available_drivers(organisation: Organisation) -> tuple[list[DriverRow], dict[str, str]]:
    """ACTIVE, online drivers with a known position, an active vehicle and no pending offer;
    and the online ones left out, with why."""
    online = Driver.objects.filter(organisation=organisation, status=DriverStatus.ACTIVE, is_online=True)
    usable, left_out = [], {}
    for driver in driver_rows(online, organisation_id=organisation.id):
        if driver.last_location is None:
            left_out[driver.name] = "no known position yet"
        elif driver.active_vehicle is None:
            left_out[driver.name] = "no active vehicle"
        elif driver.has_pending_offer:
            left_out[driver.name] = "already has an offer to answer"
        else:
            usable.append(driver)
    return usable, left_out


def order_rows(orders: QuerySet) -> list[OrderRow]:
    """The orders as OrderRow, in the queryset's order: what a round reads of an order (the
    engine's inputs, the offer's incentive, the report). Addresses, recipient and notes stay in
    the database."""
    rows = orders.values_list(
        "id",
        "external_ref",
        "status",
        "driver_id",
        "client_id",
        "client__slug",
        "hub_id",
        PointX("pickup_location"),
        PointY("pickup_location"),
        "pickup_window_start",
        "pickup_window_end",
        PointX("dropoff_location"),
        PointY("dropoff_location"),
        "dropoff_window_start",
        "dropoff_window_end",
        "weight_kg",
        "volume_litres",
        "declared_value_minor",
        "priority",
    )
    return [
        OrderRow(
            *row[:5],
            ClientRef(row[5]) if row[4] else None,
            row[6],
            LonLat(row[7], row[8]),
            row[9],
            row[10],
            LonLat(row[11], row[12]),
            *row[13:],
        )
        for row in rows
    ]


def open_orders(organisation: Organisation, now: datetime) -> list[OrderRow]:
    """Orders in the pool (CREATED, so offered to nobody) whose pickup window has not closed."""
    return order_rows(
        Order.objects.filter(
            organisation=organisation, status=OrderStatus.CREATED, pickup_window_end__gt=now
        ).order_by("-priority", "pickup_window_start", "id")
    )


def excluded_drivers(orders: list[OrderRow]) -> dict[str, set[str]]:
    """Order id -> the drivers who declined it or let an offer of it lapse (one query; the same
    rule as dispatch.selectors.drivers_excluded_for)."""
    rows = Offer.orders.through.objects.filter(
        order_id__any=[o.id for o in orders],
        offer__status__in=[OfferStatus.DECLINED, OfferStatus.EXPIRED],
    ).values_list("order_id", "offer__driver_id")
    out: dict[str, set[str]] = {}
    for order_id, driver_id in rows:
        out.setdefault(str(order_id), set()).add(str(driver_id))
    return out


def _zone_of(order: OrderRow, zones: list[Zone]) -> str | None:
    if not zones:
        return None
    pickup = Point(*order.pickup_location, srid=WGS84)
    for zone in zones:
        if zone.area.contains(pickup):
            return str(zone.id)
    return None


def to_engine_driver(
    driver: DriverRow, held: list[OrderRow], now_s: float, stops: list[StopRow] | None = None
) -> engine.Driver:
    vehicle = driver.active_vehicle
    load_kg, load_l, route = held_plan(held, stops)
    return engine.Driver(
        id=str(driver.id),
        lat=driver.last_location.y,
        lon=driver.last_location.x,
        capacity_kg=float(vehicle.capacity_kg),
        capacity_l=float(vehicle.capacity_litres),
        vehicle_type=vehicle.type,
        available_at_s=now_s,
        load_kg=load_kg,
        load_l=load_l,
        route=route,
        score=float(getattr(driver, "performance_score", None) or NEUTRAL_SCORE),
        zones=driver.zone_ids,
        status="busy" if route else "available",
        owned=driver.fleet_type == Driver.FleetType.OWNED,
    )


def client_key(order: Order | OrderRow, excluded: set[str]):
    """The engine's client id for an order: its client's slug, or a key of its own when some
    drivers are excluded for this one order."""
    slug = order.client.slug if order.client_id else None
    return (slug, str(order.id)) if excluded else slug


def to_engine_order(order: Order | OrderRow, *, zone: str | None, excluded: set[str]) -> engine.Order:
    return engine.Order(
        id=str(order.id),
        pickup_lat=order.pickup_location.y,
        pickup_lon=order.pickup_location.x,
        dropoff_lat=order.dropoff_location.y,
        dropoff_lon=order.dropoff_location.x,
        pickup_open_s=epoch_s(order.pickup_window_start),
        pickup_close_s=epoch_s(order.pickup_window_end),
        dropoff_open_s=epoch_s(order.dropoff_window_start),
        dropoff_close_s=epoch_s(order.dropoff_window_end),
        weight_kg=float(order.weight_kg),
        volume_l=float(order.volume_litres),
        value_minor=int(order.declared_value_minor),
        priority=int(order.priority),
        zone=zone,
        client_id=client_key(order, excluded),
        pickup_id=str(order.hub_id) if order.hub_id else None,
    )


def with_order_exclusions(rules: Rules, orders: list[OrderRow], excluded: dict[str, set[str]]) -> Rules:
    """The rules plus, for each order with excluded drivers, those drivers and the client rules
    of its client on the order's own key."""
    pairs = set(rules.excluded_drivers)
    for order in orders:
        drivers = excluded.get(str(order.id))
        if not drivers:
            continue
        key = client_key(order, drivers)
        pairs.update((key, driver_id) for driver_id in drivers)
        pairs.update(
            (key, d) for client, d in rules.excluded_drivers if client == key[0] and key[0] is not None
        )
    return dataclasses.replace(rules, excluded_drivers=frozenset(pairs))


def why_driver_cannot_take(driver: Driver, orders: list[Order], *, now: datetime, rules: Rules) -> str | None:
    """Whether the driver's plan as it is now still has room for these orders (capacity,
    pickup windows, batch size; the engine's own check): the reason if not, else None. A
    driver without a known position or an active vehicle is not checked (no plan to check)."""
    (row,) = driver_rows(Driver.objects.filter(id=driver.id), organisation_id=driver.organisation_id)
    if row.last_location is None or row.active_vehicle is None:
        return None
    held = order_rows(
        Order.objects.filter(driver=driver, status__in=DRIVER_HOLDS_STATUSES).exclude(
            id__in=[order.id for order in orders]
        )
    )
    return can_still_take(
        to_engine_driver(row, held, epoch_s(now), route_stops([driver.id]).get(driver.id)),
        [to_engine_order(order, zone=None, excluded=set()) for order in orders],
        travel=travel_times(organisation_id=driver.organisation_id),
        rules=rules,
    )


def load_round_inputs(organisation: Organisation, *, now: datetime, rules: Rules) -> RoundInputs:
    """Read the organisation's pool and its available drivers as the engine's inputs."""
    now_s = epoch_s(now)
    drivers, left_out = available_drivers(organisation)
    orders = open_orders(organisation, now)
    driver_ids = [d.id for d in drivers]
    held: dict = {}
    for order in order_rows(
        Order.objects.filter(driver_id__any=driver_ids, status__in=DRIVER_HOLDS_STATUSES)
    ):
        held.setdefault(order.driver_id, []).append(order)
    planned = route_stops(driver_ids)
    excluded = excluded_drivers(orders)
    zones = list(Zone.objects.filter(organisation=organisation)) if rules.zones.mode != "off" else []
    engine_orders = [
        to_engine_order(o, zone=_zone_of(o, zones), excluded=excluded.get(str(o.id), set())) for o in orders
    ]
    return RoundInputs(
        now=now,
        drivers=[to_engine_driver(d, held.get(d.id, []), now_s, planned.get(d.id)) for d in drivers],
        orders=engine_orders,
        rules=with_order_exclusions(rules, orders, excluded),
        driver_rows={str(d.id): d for d in drivers},
        order_rows={str(o.id): o for o in orders},
        left_out_drivers=left_out,
        excluded=excluded,
    )
