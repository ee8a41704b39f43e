"""The demo's traffic: an order management system placing orders and couriers working them.

Every tick (a) places new orders through the public REST API, as a real OMS would, so the
demo exercises authentication, idempotency and validation; (b) runs a dispatch round (the
product's run_round: the engine under the organisation's rules, offers with reasons), and the
couriers read and answer their offers on their phones; (c) moves each courier along the street
graph, their phone sending GPS pings, and works their order.

The couriers are people with phones: each acts only through the driver API over HTTP with
their own device token (go online, offers, accept or decline or let lapse, start, pick up,
deliver with a signature, pings), so every step passes the real routing, authentication,
serializers and services. Nobody presses "arrived": the geofence of the stop sets it from the
pings. Positions are the simulator's world, kept in memory; the server learns them from pings.

Recipients rate most deliveries as real ones do: the sender reads the order over the orders
API (the demo's API key) for its `rating_link`, and the recipient opens the page and sends the
form (CSRF cookie and token, stars, sometimes a comment).
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
from html.parser import HTMLParser

import httpx
import numpy as np
from django.db.models import Prefetch
from PIL import Image, ImageDraw

from demo.streets import StreetGraph
from dispatch.engine.geo import haversine_m
from dispatch.models import DRIVER_HOLDS_STATUSES, Offer, OfferStatus, Order, OrderStatus
from dispatch.services.rounds import run_round
from fleet.models import Driver, DriverStatus, Hub, Vehicle
from identity.models import Organisation

logger = logging.getLogger(__name__)

DEFAULT_DECLINE_SHARE = 0.15
DEFAULT_IGNORE_SHARE = 0.1  # offers a courier lets lapse (their expiry and the auction take over)
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
# What the phones' GPS reports: the true place blurred by this much noise (metres, per axis),
# claiming this accuracy.
PING_NOISE_M = 3.0
PING_ACCURACY_M = 8.0
METRES_PER_DEGREE = 111_195.0
IDLE_PINGS_PER_REQUEST = 5
OFFER_POLL_TICKS = 3  # an idle courier's app re-reads its offers this often, pushes aside
SYNC_EVERY_TICKS = 10  # an idle courier's app re-reads their orders this often
# Straight-line distance from pickup to drop-off: city-centre quick commerce.
DROPOFF_MIN_M, DROPOFF_MAX_M = 250.0, 1200.0
# A tick that comes late (a slow machine, a paused process) moves couriers at most this far.
MAX_TICK_SECONDS = 10.0
DEFAULT_RATING_SHARE = 0.7  # deliveries their recipient rates
STAR_WEIGHTS = {5: 60, 4: 25, 3: 9, 2: 4, 1: 2}  # mostly happy, sometimes not
COMMENT_SHARE = 0.3
COMMENTS = {
    5: ("Fast and friendly, thanks!", "Perfect, right to the door.", "Great service."),
    4: ("Good, a bit later than I hoped.", "Fine, thanks."),
    3: ("OK.", "The bag was a bit squashed."),
    2: ("Took a long time.", "Left at the wrong door."),
    1: ("Very late and nobody called.", "Package damaged."),
}
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


class ServerUnreachable(Exception):
    """The server did not answer a courier's phone (stopping, or not up yet)."""


class DriverPhone:
    """One courier's phone: the driver API over HTTP, signed in with their device token."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Device {token}"}

    def call(self, method: str, path: str, *, keyed: bool = True, **body) -> dict | list | None:
        """The answer's JSON, or None when the server refused (logged: an offer withdrawn
        meanwhile, an order taken back...). A POST carries a fresh Idempotency-Key, as the
        app's do so that their retries apply once; pings need none (`keyed=False`): a
        retried ping is known by its time."""
        headers = dict(self.headers)
        if method == "POST" and keyed:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            response = self.http.request(method, path, headers=headers, **body)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{method} {path}: {exc}") from exc
        if response.status_code >= 400:
            logger.info(
                "demo courier %s %s answered %s: %s", method, path, response.status_code, response.text[:300]
            )
            return None
        return response.json()


@dataclass
class CourierOrder:
    """The order a courier works, as their app shows it."""

    id: str
    status: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    recipient_name: str

    @classmethod
    def from_api(cls, order: dict) -> "CourierOrder":
        return cls(
            id=order["id"],
            status=order["status"],
            pickup=(order["pickup"]["lat"], order["pickup"]["lon"]),
            dropoff=(order["dropoff"]["lat"], order["dropoff"]["lon"]),
            recipient_name=order["recipient"]["name"],
        )


@dataclass
class Courier:
    """Where a courier is, the waypoints (lat, lon) still ahead, and what their phone knows."""

    lat: float
    lon: float
    phone: DriverPhone | None = None
    speed_mps: float = DEFAULT_SPEED_MPS
    goal: object = None  # what the waypoints lead to: ("pickup"/"dropoff", order id) or ("wander", node)
    waypoints: list[tuple[float, float]] = field(default_factory=list)
    online: bool = False
    order: CourierOrder | None = None
    seen_offers: set[str] = field(default_factory=set)
    pings: list[dict] = field(default_factory=list)  # fixes not sent yet
    ticks_since_sync: int = 0


@dataclass
class TickReport:
    placed: int = 0
    rejected: int = 0
    online: int = 0
    assigned: int = 0
    offered: int = 0
    declined: int = 0
    ignored: int = 0
    transitions: int = 0
    arrivals: int = 0
    delivered: int = 0
    pings: int = 0
    rated: int = 0
    rating_refused: int = 0  # the order unreadable, no link, or the page said no (404, 409, 410...)
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
        ignore_share: float = DEFAULT_IGNORE_SHARE,
        http: httpx.Client | None = None,
        device_tokens: dict[str, str] | None = None,
        api_key: str | None = None,
        rating_share: float = DEFAULT_RATING_SHARE,
    ) -> None:
        """`http` reaches the server's driver API; `device_tokens` (driver id -> token, from
        seed_demo) are the couriers' phones: a driver without one is not simulated. With
        `api_key` (the demo's), the sender reads delivered orders for their rating link and
        `rating_share` of the recipients rate."""
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
        self.ignore_share = ignore_share
        self.http = http
        self.device_tokens = device_tokens or {}
        self.recipients = Recipients(http, api_key, rng) if http is not None and api_key else None
        self.rating_share = rating_share
        # Orders are placed only where the organisation serves (its zones cover this box);
        # the street graph reaches a little beyond it, and the order API refuses such places.
        self.served_nodes = graph.nodes_in_bbox(service_bbox or graph.bbox())
        self.couriers: dict[uuid.UUID, Courier] = {}
        self._last_tick: datetime | None = None
        self._orders_due = 0.0
        self._sequence = 0
        self._ticks = 0

    # --- the tick ------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickReport:
        """One step of the world at `now` (aware): place, sign in, assign, move and work."""
        started = time.perf_counter()
        elapsed = self.tick_seconds if self._last_tick is None else (now - self._last_tick).total_seconds()
        elapsed = min(max(elapsed, 0.0), MAX_TICK_SECONDS)
        self._last_tick = now
        report = TickReport()
        self.place_orders(now=now, elapsed=elapsed, report=report)
        try:
            self.sign_in(report=report)
            self.assignment_round(report=report)
            self.move_couriers(now=now, elapsed=elapsed, report=report)
        except ServerUnreachable as exc:
            logger.warning("the couriers' phones cannot reach the server (%s); they wait a tick", exc)
        report.seconds = time.perf_counter() - started
        return report

    # --- (a) orders in, through the API ----------------------------------------------------

    def place_orders(self, *, now: datetime, elapsed: float, report: TickReport) -> None:
        # The backlog a round can still offer: an order whose pickup window closed while the demo
        # was paused (a laptop asleep) is never offered again and must not hold up new ones.
        backlog = Order.objects.filter(
            organisation=self.organisation, status=OrderStatus.CREATED, pickup_window_end__gt=now
        ).count()
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

    # --- (b) a dispatch round and the couriers' answers, through their phones ------------------

    def _courier(self, driver: Driver) -> Courier | None:
        """The courier of a driver with a phone (a device token), placed where they were last
        seen; None for a driver the demo has no phone for."""
        courier = self.couriers.get(driver.id)
        token = self.device_tokens.get(str(driver.id))
        if courier is None and token and self.http is not None and driver.last_location is not None:
            courier = self.couriers[driver.id] = Courier(
                lat=driver.last_location.y,
                lon=driver.last_location.x,
                phone=DriverPhone(self.http, token),
                speed_mps=self._speed(driver),
            )
        return courier

    def _drivers(self) -> list[Driver]:
        """The world's couriers: ACTIVE drivers of the organisation (their vehicles for speed)."""
        return list(
            Driver.objects.filter(
                organisation=self.organisation, status=DriverStatus.ACTIVE
            ).prefetch_related(Prefetch("vehicles", queryset=Vehicle.objects.filter(is_active=True)))
        )

    def sign_in(self, *, report: TickReport) -> None:
        """Every courier with a phone goes online through the driver API (once; again later
        if it was refused)."""
        drivers = self._drivers()
        for gone in set(self.couriers) - {d.id for d in drivers}:
            del self.couriers[gone]  # suspended or offboarded meanwhile
        for driver in drivers:
            courier = self._courier(driver)
            if courier is None or courier.online:
                continue
            if courier.phone.call("POST", "/api/v1/driver/online") is not None:
                courier.online = True
                report.online += 1

    def assignment_round(self, *, report: TickReport) -> None:
        """The product's round (as the scheduler runs it), then the couriers read their offers."""
        made = run_round(organisation=self.organisation).offers
        report.offered += len(made)
        # The product pushes a new offer to its driver's socket; their app then reads it.
        pushed = set(
            Offer.objects.filter(id__in=[m.offer_id for m in made]).values_list("driver_id", flat=True)
        )
        self.answer_offers(report=report, pushed=pushed)

    def answer_offers(self, *, report: TickReport, pushed: set) -> None:
        """Idle couriers read their offers on their phones (at once when one was pushed to
        them, else every few ticks: offers made by the scheduled rounds) and answer a new one:
        most accept, some decline (a later round leaves them out for that order), some let it
        lapse (its expiry and the auction's incentive take over)."""
        self._ticks += 1
        for index, (driver_id, courier) in enumerate(self.couriers.items()):
            if not courier.online or courier.order is not None:
                continue
            if driver_id not in pushed and (self._ticks + index) % OFFER_POLL_TICKS:
                continue
            offers = courier.phone.call("GET", "/api/v1/driver/offers") or []
            for offer in offers:
                if offer["status"] != OfferStatus.PENDING or offer["id"] in courier.seen_offers:
                    continue
                courier.seen_offers.add(offer["id"])
                roll = self.rng.random()
                if roll < self.ignore_share:
                    report.ignored += 1
                elif roll < self.ignore_share + self.decline_share:
                    reason = self.rng.choice(DECLINE_REASONS)
                    path = f"/api/v1/driver/offers/{offer['id']}/decline"
                    if courier.phone.call("POST", path, json={"reason": reason}) is not None:
                        report.declined += 1
                elif courier.phone.call("POST", f"/api/v1/driver/offers/{offer['id']}/accept") is not None:
                    report.assigned += len(offer["orders"])
                    self._sync_orders(courier)
                    break  # one order at a time: the rest can wait or lapse

    def _sync_orders(self, courier: Courier) -> None:
        """The courier's current order as their app lists it (the oldest first)."""
        orders = courier.phone.call("GET", "/api/v1/driver/orders")
        if orders is None:
            return
        courier.order = CourierOrder.from_api(orders[0]) if orders else None
        courier.ticks_since_sync = 0

    # --- (c) moving couriers and working their orders, through their phones ---------------------

    def move_couriers(self, *, now: datetime, elapsed: float, report: TickReport) -> None:
        for courier in self.couriers.values():
            if not courier.online:
                continue
            courier.ticks_since_sync += 1
            if courier.order is None and courier.ticks_since_sync >= SYNC_EVERY_TICKS:
                self._sync_orders(courier)  # work a dispatcher gave them directly
            moved_from = (courier.lat, courier.lon)
            budget_m = courier.speed_mps * elapsed * self.speed_multiplier
            if courier.order is None:
                self._wander(courier, budget_m=budget_m * WANDER_SPEED_FACTOR)
            else:
                self._work(courier, now=now, budget_m=budget_m, report=report)
            courier.pings.append(self._fix(courier, moved_from=moved_from, now=now, elapsed=elapsed))
            # A phone at work reports every fix; an idle one saves battery and sends a few at once.
            if courier.order is not None or len(courier.pings) >= IDLE_PINGS_PER_REQUEST:
                self._send_pings(courier, report=report)

    def _speed(self, driver: Driver) -> float:
        vehicle = next(iter(driver.vehicles.all()), None)
        return SPEED_MPS.get(vehicle.type, DEFAULT_SPEED_MPS) if vehicle else DEFAULT_SPEED_MPS

    def _work(self, courier: Courier, *, now: datetime, budget_m: float, report: TickReport) -> None:
        """Press what the courier's next step needs, or ride to the next stop. Arrival is not
        pressed: the pings' geofence sets it."""
        order = courier.order
        if order.status in (OrderStatus.EN_ROUTE_PICKUP, OrderStatus.PICKED_UP):
            leg = "pickup" if order.status == OrderStatus.EN_ROUTE_PICKUP else "dropoff"
            target = order.pickup if leg == "pickup" else order.dropoff
            self._head_for(courier, (leg, order.id), target)
            self._advance(courier, budget_m)
            return
        if order.status == OrderStatus.ARRIVED_DROPOFF:
            answer = courier.phone.call(
                "POST",
                f"/api/v1/driver/orders/{order.id}/deliver",
                data={
                    "lat": f"{courier.lat:.7f}",
                    "lon": f"{courier.lon:.7f}",
                    "accuracy_m": str(PING_ACCURACY_M),
                    "captured_at": now.isoformat(),
                    "recipient_name": order.recipient_name,
                },
                files={"signature": (f"signature-{order.id}.png", signature_png(self.rng), "image/png")},
            )
            if answer is not None:
                report.delivered += 1
                if self.recipients is not None and self.rng.random() < self.rating_share:
                    self.recipients.rate(order.id, report=report)
        else:
            action = {OrderStatus.ASSIGNED: "start_pickup", OrderStatus.ARRIVED_PICKUP: "pick_up"}.get(
                order.status
            )
            if action is None:
                self._sync_orders(courier)
                return
            answer = courier.phone.call("POST", f"/api/v1/driver/orders/{order.id}/{action}")
        if answer is None:  # taken back, cancelled, or moved meanwhile: read the app again
            self._sync_orders(courier)
            return
        report.transitions += 1
        order.status = answer["status"]
        if order.status not in DRIVER_HOLDS_STATUSES:
            courier.order = None

    def _send_pings(self, courier: Courier, *, report: TickReport) -> None:
        answer = courier.phone.call(
            "POST", "/api/v1/driver/pings", keyed=False, json={"pings": courier.pings}
        )
        courier.pings = []
        if answer is None:
            return
        report.pings += answer["stored"]
        for change in answer["geofence"]:
            if (
                courier.order is None
                or change["order_id"] != courier.order.id
                or change["event"] != "arrived"
            ):
                continue
            courier.order.status = (
                OrderStatus.ARRIVED_PICKUP if change["stop"] == "pickup" else OrderStatus.ARRIVED_DROPOFF
            )
            report.arrivals += 1

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

    def _fix(self, courier: Courier, *, moved_from, now: datetime, elapsed: float) -> dict:
        """What the phone's GPS reports: the courier's place give or take a few metres."""
        metres = haversine_m(*moved_from, courier.lat, courier.lon)
        north, east = self.rng.gauss(0, PING_NOISE_M), self.rng.gauss(0, PING_NOISE_M)
        lat = courier.lat + north / METRES_PER_DEGREE
        lon = courier.lon + east / (METRES_PER_DEGREE * math.cos(math.radians(courier.lat)))
        fix = {
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "accuracy_m": PING_ACCURACY_M,
            "recorded_at": now.isoformat(),
            "speed_mps": round(metres / elapsed, 2) if elapsed > 0 else None,
        }
        if metres > 0:
            fix["heading_deg"] = round(_bearing_deg(*moved_from, courier.lat, courier.lon), 1) % 360.0
        return fix


class _FormInputs(HTMLParser):
    """The named <input> values of a page (the rating form's CSRF token)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("name") and named.get("type") != "radio":
            self.values[named["name"]] = named.get("value") or ""


class Recipients:
    """The people who receive the orders: the sender's system reads the delivered order over
    the orders API (the demo's API key) for its rating link, and the recipient opens the page
    and sends the form, in their own browser session (the CSRF cookie from the page, its token
    in the form)."""

    def __init__(self, http: httpx.Client, api_key: str, rng) -> None:
        self.http = http
        self.api_key = api_key
        self.rng = rng

    def rate(self, order_id: str, *, report: TickReport) -> None:
        """Rate one delivered order; any refusal (no link, 404, 409 already rated, 410 expired,
        a 400 or 403 on the form) is counted and logged, never raised."""
        try:
            page_path = self._rating_path(order_id)
            if page_path is None:
                report.rating_refused += 1
                return
            page = self.http.get(page_path)
            if page.status_code != 200:
                self._refused(report, order_id, page)
                return
            token = self._csrf_token(page.text)
            cookie = page.cookies.get("csrftoken")
            stars = self.rng.choices(list(STAR_WEIGHTS), weights=list(STAR_WEIGHTS.values()))[0]
            comment = self.rng.choice(COMMENTS[stars]) if self.rng.random() < COMMENT_SHARE else ""
            # The recipient's browser session: their own cookie, not the shared client's jar.
            sent = self.http.post(
                page_path,
                data={"csrfmiddlewaretoken": token, "stars": str(stars), "comment": comment},
                headers={"Cookie": f"csrftoken={cookie}"} if cookie else {},
            )
        except httpx.TransportError as exc:
            logger.info("demo recipient could not reach the rating page of %s: %s", order_id, exc)
            report.rating_refused += 1
            return
        if sent.status_code != 200:
            self._refused(report, order_id, sent)
            return
        report.rated += 1

    def _rating_path(self, order_id: str) -> str | None:
        """The rating link's path from the order as its sender reads it (the server's public
        base URL may name another host than the one the demo reaches it on)."""
        response = self.http.get(
            f"/api/v1/orders/{order_id}", headers={"Authorization": f"Bearer {self.api_key}"}
        )
        if response.status_code != 200:
            logger.info("demo sender could not read order %s: %s", order_id, response.status_code)
            return None
        link = response.json().get("rating_link")
        if not link:
            logger.info("demo order %s has no rating link", order_id)
            return None
        return httpx.URL(link["url"]).raw_path.decode("ascii")

    @staticmethod
    def _csrf_token(page: str) -> str:
        parser = _FormInputs()
        parser.feed(page)
        return parser.values.get("csrfmiddlewaretoken", "")

    @staticmethod
    def _refused(report: TickReport, order_id: str, response: httpx.Response) -> None:
        """Logged by order (the link itself is a bearer secret)."""
        logger.info("demo recipient: the rating page of order %s answered %s", order_id, response.status_code)
        report.rating_refused += 1


def _bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from point 1 to point 2, in [0, 360)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    x = math.sin(dlmb) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    bearing = math.degrees(math.atan2(x, y)) % 360.0
    return 0.0 if bearing >= 360.0 else bearing  # -1e-17 % 360 rounds to 360.0
