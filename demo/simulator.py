"""The demo's traffic: an order management system placing orders and couriers working them.

Every tick (a) places new orders through the public REST API, as a real OMS would, so the
demo exercises authentication, idempotency and validation; (b) runs a dispatch round (the
product's run_round: the engine under the organisation's rules, offers with reasons) and has
the couriers answer their offers through accept_offer, some declining; (c) moves each courier
along the street graph and advances its order through the real services: pickup, drop-off,
proof of delivery.
Idle couriers wander slowly. Positions are kept in memory and recorded as GPS pings.
"""

import io
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import Prefetch
from PIL import Image, ImageDraw

from core.actors import Actor
from core.exceptions import ConcurrentChange, InvalidTransition
from core.geo import make_point
from demo.streets import StreetGraph
from dispatch.engine.geo import haversine_m
from dispatch.models import DRIVER_HOLDS_STATUSES, Offer, OfferStatus, Order, OrderStatus
from dispatch.services.offers import accept_offer, decline_offer
from dispatch.services.orders import deliver_order, transition_order
from dispatch.services.rounds import run_round
from fleet.models import Driver, DriverStatus, Hub, Vehicle
from fleet.services import PingInput, record_ping
from identity.models import Organisation

logger = logging.getLogger(__name__)

ACTOR = Actor.system("demo-simulator")
COURIER_ACTOR = Actor.system("demo-courier")  # the couriers' answers to offers
DEFAULT_DECLINE_SHARE = 0.15
DECLINE_REASONS = ("Too far for me.", "On a break.", "Too heavy for my bag.", "")
# Typical city speeds in m/s, stops and lights included.
SPEED_MPS = {
    "bicycle": 4.0,
    "cargo_bike": 3.5,
    "scooter": 6.0,
    "motorcycle": 8.0,
    "car": 8.0,
    "van": 7.0,
    "truck": 6.0,
}
DEFAULT_SPEED_MPS = 4.0
WANDER_SPEED_FACTOR = 0.3
ARRIVAL_RADIUS_M = 50.0
# Straight-line distance from pickup to drop-off: city-centre quick commerce.
DROPOFF_MIN_M, DROPOFF_MAX_M = 250.0, 1200.0
# A tick that comes late (a slow machine, a paused process) moves couriers at most this far.
MAX_TICK_SECONDS = 10.0
DEFAULT_RECIPIENTS = ("Aino Virtanen", "Eero Korhonen", "Helmi Nieminen", "Juha Mäkinen", "Liisa Laine")

OrderPlacer = Callable[[dict, str], object]
"""Places one order: (JSON body, Idempotency-Key) -> anything; raises if it was refused."""


class OrderRejected(Exception):
    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"POST /api/v1/orders answered {status_code}: {body[:500]}")
        self.status_code = status_code


class ApiOrderPlacer:
    """Places orders over HTTP with an API key: the way an order management system does."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self.client = client
        self.api_key = api_key

    def __call__(self, payload: dict, idempotency_key: str) -> dict:
        response = self.client.post(
            "/api/v1/orders",
            json=payload,
            headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": idempotency_key},
        )
        if response.status_code != 201:
            raise OrderRejected(response.status_code, response.text)
        return response.json()


def wait_until_healthy(client: httpx.Client, *, timeout_s: float, should_stop=lambda: False) -> bool:
    """Poll GET /healthz until the server answers 200; False on timeout or when told to stop."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not should_stop():
        try:
            if client.get("/healthz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return False


def signature_png(rng, *, width: int = 300, height: int = 100) -> bytes:
    """A scribbled signature: a random smooth stroke, black on white, as PNG bytes."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    points = []
    for step in range(40):
        x = 15 + step * (width - 30) / 39
        y = height / 2 + math.sin(step * rng.uniform(0.4, 0.9)) * rng.uniform(10, height / 2 - 12)
        points.append((x, y))
    draw.line(points, fill=0, width=3, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Courier:
    """Where a courier is and the waypoints (lat, lon) still ahead on their current leg."""

    lat: float
    lon: float
    goal: object = None  # what the waypoints lead to: ("pickup"/"dropoff", order id) or ("wander", node)
    waypoints: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class TickReport:
    placed: int = 0
    rejected: int = 0
    assigned: int = 0
    offered: int = 0
    declined: int = 0
    transitions: int = 0
    delivered: int = 0
    pings: int = 0
    seconds: float = 0.0


class Simulator:
    def __init__(
        self,
        *,
        organisation: Organisation,
        graph: StreetGraph,
        place_order: OrderPlacer,
        rng,
        orders_per_minute: float = 12.0,
        max_backlog: int = 15,
        speed_multiplier: float = 1.0,
        tick_seconds: float = 2.0,
        hub_pickup_share: float = 0.7,
        recipient_names: Sequence[str] = DEFAULT_RECIPIENTS,
        service_bbox: tuple[float, float, float, float] | None = None,
        decline_share: float = DEFAULT_DECLINE_SHARE,
    ) -> None:
        self.organisation = organisation
        self.graph = graph
        self.place_order = place_order
        self.rng = rng
        self.orders_per_minute = orders_per_minute
        self.max_backlog = max_backlog
        self.speed_multiplier = speed_multiplier
        self.tick_seconds = tick_seconds
        self.hub_pickup_share = hub_pickup_share
        self.recipient_names = tuple(recipient_names)
        self.decline_share = decline_share
        # Orders are placed only where the organisation serves (its zones cover this box);
        # the street graph reaches a little beyond it, and the order API refuses such places.
        self.served_nodes = graph.nodes_in_bbox(service_bbox or graph.bbox())
        self.couriers: dict[uuid.UUID, Courier] = {}
        self._last_tick: datetime | None = None
        self._orders_due = 0.0
        self._sequence = 0

    # --- the tick ------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickReport:
        """One step of the world at `now` (aware): place, assign, move and advance."""
        started = time.perf_counter()
        elapsed = self.tick_seconds if self._last_tick is None else (now - self._last_tick).total_seconds()
        elapsed = min(max(elapsed, 0.0), MAX_TICK_SECONDS)
        self._last_tick = now
        report = TickReport()
        self.place_orders(now=now, elapsed=elapsed, report=report)
        self.assignment_round(report=report)
        self.move_couriers(now=now, elapsed=elapsed, report=report)
        report.seconds = time.perf_counter() - started
        return report

    # --- (a) orders in, through the API ----------------------------------------------------

    def place_orders(self, *, now: datetime, elapsed: float, report: TickReport) -> None:
        backlog = Order.objects.filter(organisation=self.organisation, status=OrderStatus.CREATED).count()
        if backlog >= self.max_backlog:
            self._orders_due = 0.0
            return
        self._orders_due += self.orders_per_minute * elapsed / 60.0
        count = min(int(self._orders_due), self.max_backlog - backlog)
        self._orders_due -= int(self._orders_due)
        hubs = list(Hub.objects.filter(organisation=self.organisation, is_active=True))
        client_ids = [
            str(pk) for pk in self.organisation.clients.filter(is_active=True).values_list("id", flat=True)
        ]
        for _ in range(count):
            payload = self.order_payload(now=now, hubs=hubs)
            if client_ids:  # the 3PL's retailers send most orders; some are its own
                payload["client_id"] = self.rng.choice([*client_ids, None])
            try:
                self.place_order(payload, str(uuid.uuid4()))
                report.placed += 1
            except (OrderRejected, httpx.HTTPError) as exc:
                report.rejected += 1
                logger.warning("demo order refused: %s", exc)

    def order_payload(self, *, now: datetime, hubs: Sequence[Hub]) -> dict:
        """A plausible order: from a hub or a shop on a street, to a door 250 m to 1.2 km away."""
        rng, graph = self.rng, self.graph
        self._sequence += 1
        payload: dict = {"external_ref": f"SIM-{now:%Y%m%d-%H%M%S}-{self._sequence:04d}"}
        if hubs and rng.random() < self.hub_pickup_share:
            hub = rng.choice(hubs)
            payload["hub_id"] = str(hub.id)
            pickup_lat, pickup_lon, pickup_address = hub.location.y, hub.location.x, hub.address
        else:
            node = int(rng.choice(self.served_nodes))
            pickup_lat, pickup_lon = graph.point(node)
            pickup_address = f"{graph.street_name(node) or 'Helsinki'} {rng.randrange(1, 60)}"
        near = np.intersect1d(
            graph.nodes_within(pickup_lat, pickup_lon, min_m=DROPOFF_MIN_M, max_m=DROPOFF_MAX_M),
            self.served_nodes,
        )
        node = int(rng.choice(near if len(near) else self.served_nodes))
        dropoff_lat, dropoff_lon = graph.point(node)
        start = now.astimezone(UTC)
        roll = rng.random()
        weight = (
            rng.uniform(0.3, 8)
            if roll < 0.85
            else rng.uniform(8, 30)
            if roll < 0.97
            else rng.uniform(40, 120)
        )
        payload.update(
            pickup={
                "address": pickup_address,
                "lat": round(pickup_lat, 7),
                "lon": round(pickup_lon, 7),
                "window": {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()},
            },
            dropoff={
                "address": f"{graph.street_name(node) or 'Helsinki'} {rng.randrange(1, 60)}",
                "lat": round(dropoff_lat, 7),
                "lon": round(dropoff_lon, 7),
                "window": {
                    "start": (start + timedelta(minutes=10)).isoformat(),
                    "end": (start + timedelta(minutes=75)).isoformat(),
                },
            },
            weight_kg=str(Decimal(weight).quantize(Decimal("0.01"))),
            volume_litres=str(Decimal(weight * 3).quantize(Decimal("0.1"))),
            declared_value_minor=rng.randrange(500, 20000, 50),
            tip_minor=rng.choice((0, 0, 100, 200, 300, 500)),
            priority=rng.choices(("low", "normal", "high", "urgent"), weights=(2, 12, 3, 1))[0],
            recipient={
                "name": rng.choice(self.recipient_names),
                "phone": f"+35850{rng.randrange(1_000_000, 10_000_000)}",
            },
            notes=rng.choice(("", "", "", "Ring twice", "Leave at the door", "Call on arrival")),
        )
        return payload

    # --- (b) a dispatch round and the couriers' answers ------------------------------------

    def _online_drivers(self) -> list[Driver]:
        return list(
            Driver.objects.filter(organisation=self.organisation, status=DriverStatus.ACTIVE, is_online=True)
            .exclude(last_location=None)
            .prefetch_related(Prefetch("vehicles", queryset=Vehicle.objects.filter(is_active=True)))
        )

    def _courier(self, driver: Driver) -> Courier:
        courier = self.couriers.get(driver.id)
        if courier is None:
            courier = self.couriers[driver.id] = Courier(
                lat=driver.last_location.y, lon=driver.last_location.x
            )
        return courier

    def assignment_round(self, *, report: TickReport) -> None:
        """The product's round (as the scheduler runs it), then every pending offer answered."""
        report.offered += len(run_round(organisation=self.organisation).offers)
        self.answer_offers(report=report)

    def answer_offers(self, *, report: TickReport) -> None:
        """Couriers accept their pending offers through the driver's service; some decline (a
        later round then leaves them out for that order)."""
        pending = (
            Offer.objects.filter(organisation=self.organisation, status=OfferStatus.PENDING)
            .select_related("driver")
            .order_by("created_at")
        )
        for offer in pending:
            try:
                if self.rng.random() < self.decline_share:
                    reason = self.rng.choice(DECLINE_REASONS)
                    decline_offer(offer_id=offer.id, driver=offer.driver, actor=COURIER_ACTOR, reason=reason)
                    report.declined += 1
                else:
                    accept_offer(offer_id=offer.id, driver=offer.driver, actor=COURIER_ACTOR)
                    report.assigned += offer.orders.count()
            except (InvalidTransition, ConcurrentChange, ValidationError) as exc:
                logger.info("demo answer to offer %s skipped: %s", offer.id, exc)

    # --- (c) moving couriers and advancing their orders --------------------------------------

    def move_couriers(self, *, now: datetime, elapsed: float, report: TickReport) -> None:
        drivers = {d.id: d for d in self._online_drivers()}
        for gone in set(self.couriers) - set(drivers):
            del self.couriers[gone]
        current: dict = {}
        held = (
            Order.objects.filter(
                organisation=self.organisation, status__in=DRIVER_HOLDS_STATUSES, driver_id__in=list(drivers)
            )
            .order_by("created_at")
            .only("id", "status", "driver_id", "pickup_location", "dropoff_location", "recipient_name")
        )
        for order in held:
            current.setdefault(order.driver_id, order)  # a courier works one order at a time, oldest first
        for driver in drivers.values():
            order = current.get(driver.id)
            courier = self._courier(driver)
            speed = self._speed(driver)
            moved_from = (courier.lat, courier.lon)
            if order is None:
                self._wander(courier, budget_m=speed * WANDER_SPEED_FACTOR * elapsed * self.speed_multiplier)
            else:
                self._work(
                    driver,
                    courier,
                    order,
                    now=now,
                    budget_m=speed * elapsed * self.speed_multiplier,
                    report=report,
                )
            if (courier.lat, courier.lon) != moved_from:
                self._ping(driver, courier, moved_from=moved_from, now=now, elapsed=elapsed)
                report.pings += 1

    def _speed(self, driver: Driver) -> float:
        vehicle = next(iter(driver.vehicles.all()), None)
        return SPEED_MPS.get(vehicle.type, DEFAULT_SPEED_MPS) if vehicle else DEFAULT_SPEED_MPS

    def _work(self, driver, courier, order, *, now, budget_m, report) -> None:
        status = order.status
        if status in (OrderStatus.EN_ROUTE_PICKUP, OrderStatus.PICKED_UP):
            leg = "pickup" if status == OrderStatus.EN_ROUTE_PICKUP else "dropoff"
            target = order.pickup_location if leg == "pickup" else order.dropoff_location
            self._head_for(courier, (leg, order.id), (target.y, target.x))
            self._advance(courier, budget_m)
            if haversine_m(courier.lat, courier.lon, target.y, target.x) > ARRIVAL_RADIUS_M:
                return
        action = {
            OrderStatus.ASSIGNED: "start_pickup",
            OrderStatus.EN_ROUTE_PICKUP: "arrive_pickup",
            OrderStatus.ARRIVED_PICKUP: "pick_up",
            OrderStatus.PICKED_UP: "arrive_dropoff",
            OrderStatus.ARRIVED_DROPOFF: "deliver",
        }[status]
        try:
            if action == "deliver":
                deliver_order(
                    order_id=order.id,
                    organisation=self.organisation,
                    driver=driver,
                    actor=ACTOR,
                    location=make_point(lat=courier.lat, lon=courier.lon),
                    captured_at=now,
                    signature=ContentFile(signature_png(self.rng), name=f"signature-{order.id}.png"),
                    recipient_name=order.recipient_name,
                    accuracy_m=5.0,
                )
                report.delivered += 1
            else:
                transition_order(
                    order_id=order.id, organisation=self.organisation, action=action, actor=ACTOR
                )
            report.transitions += 1
        except (InvalidTransition, ConcurrentChange, ValidationError) as exc:
            logger.info("demo %s of %s skipped: %s", action, order.id, exc)

    def _wander(self, courier: Courier, *, budget_m: float) -> None:
        if not courier.waypoints or not (isinstance(courier.goal, tuple) and courier.goal[0] == "wander"):
            near = self.graph.nodes_within(courier.lat, courier.lon, min_m=150, max_m=600)
            node = int(self.rng.choice(near)) if len(near) else self.rng.randrange(len(self.graph))
            self._head_for(courier, ("wander", node), self.graph.point(node))
        self._advance(courier, budget_m)

    def _head_for(self, courier: Courier, goal, target: tuple[float, float]) -> None:
        """Plan the street path to target unless the courier is already on its way there."""
        if courier.goal == goal:
            return
        path = self.graph.shortest_path(
            self.graph.nearest(courier.lat, courier.lon), self.graph.nearest(*target)
        )
        courier.goal = goal
        courier.waypoints = [self.graph.point(node) for node in path] + [target]

    @staticmethod
    def _advance(courier: Courier, budget_m: float) -> None:
        """Move along the waypoints by up to budget_m metres."""
        while budget_m > 0 and courier.waypoints:
            lat, lon = courier.waypoints[0]
            step = haversine_m(courier.lat, courier.lon, lat, lon)
            if step <= budget_m:
                courier.lat, courier.lon = lat, lon
                courier.waypoints.pop(0)
                budget_m -= step
            else:
                share = budget_m / step
                courier.lat += (lat - courier.lat) * share
                courier.lon += (lon - courier.lon) * share
                budget_m = 0

    def _ping(self, driver: Driver, courier: Courier, *, moved_from, now: datetime, elapsed: float) -> None:
        metres = haversine_m(*moved_from, courier.lat, courier.lon)
        heading = _bearing_deg(*moved_from, courier.lat, courier.lon)
        record_ping(
            driver=driver,
            ping=PingInput(
                lat=courier.lat,
                lon=courier.lon,
                recorded_at=now,
                accuracy_m=5.0,
                speed_mps=metres / elapsed if elapsed > 0 else None,
                heading_deg=heading,
            ),
        )


def _bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from point 1 to point 2, in [0, 360)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    x = math.sin(dlmb) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    bearing = math.degrees(math.atan2(x, y)) % 360.0
    return 0.0 if bearing >= 360.0 else bearing  # -1e-17 % 360 rounds to 360.0
