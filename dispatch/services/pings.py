"""Writes for a driver's GPS pings: store them, then let the geofences of their stops decide
arrivals and departures (dispatch.engine.geofence), all in one transaction.

The driver row is locked first, so two requests from one driver (HTTP and socket, or a retry)
apply one after the other and each stop's geofence state moves once per ping. An arrival
moves the order through its one state machine (ARRIVED_PICKUP, ARRIVED_DROPOFF) as the system
rule `geofence`, with the pings that decided as the reason; every arrival and departure is a
GeofenceVisit row and a `geofence.*` event.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from core.exceptions import ConcurrentChange, InvalidTransition
from dispatch.engine import geofence
from dispatch.models import GeofenceVisit, Order, OrderStatus
from dispatch.services.orders import transition_order
from fleet.models import Driver, DriverStatus, DriverStatusChange
from fleet.services import PingInput, record_pings, validate_ping
from identity.models import Organisation

logger = logging.getLogger(__name__)

MAX_PINGS_PER_REQUEST = 100
GEOFENCE_ACTOR = Actor.system("geofence")
GEOFENCE_RULE = geofence.Rule()
# Which stop's geofence is watched while the order is in which status (a driver who pressed
# "arrived" themself is still seen arriving and leaving).
WATCHED_STOP = {
    OrderStatus.ASSIGNED: GeofenceVisit.Kind.PICKUP,
    OrderStatus.EN_ROUTE_PICKUP: GeofenceVisit.Kind.PICKUP,
    OrderStatus.ARRIVED_PICKUP: GeofenceVisit.Kind.PICKUP,
    OrderStatus.PICKED_UP: GeofenceVisit.Kind.DROPOFF,
    OrderStatus.ARRIVED_DROPOFF: GeofenceVisit.Kind.DROPOFF,
}
# The steps an arrival takes an order through (an ASSIGNED driver who reaches the pickup has
# evidently set off for it).
ARRIVAL_STEPS = {
    (GeofenceVisit.Kind.PICKUP, OrderStatus.ASSIGNED): ("start_pickup", "arrive_pickup"),
    (GeofenceVisit.Kind.PICKUP, OrderStatus.EN_ROUTE_PICKUP): ("arrive_pickup",),
    (GeofenceVisit.Kind.DROPOFF, OrderStatus.PICKED_UP): ("arrive_dropoff",),
}
KIND_WORDS = {GeofenceVisit.Kind.PICKUP: "pickup", GeofenceVisit.Kind.DROPOFF: "drop-off"}
EVIDENCE_KEPT = 10  # pings of a run kept as evidence (the dwell needs 2 or a few more)


@dataclass(frozen=True)
class GeofenceChange:
    order_id: object
    kind: str
    event: str  # "arrived" or "left"
    at: datetime
    visit_id: int


@dataclass
class PingsReceived:
    stored: int = 0
    changes: list[GeofenceChange] = field(default_factory=list)


def driver_may_ping(driver: Driver) -> None:
    """Pings are taken from an ACTIVE driver who is online; otherwise say why, plainly."""
    if driver.status != DriverStatus.ACTIVE:
        why = (
            DriverStatusChange.objects.filter(driver=driver, to_status=driver.status)
            .values_list("reason", flat=True)
            .first()
        )
        label = DriverStatus(driver.status).label.lower()
        raise ValidationError(
            {"status": f"Your account is {label}" + (f": {why}" if why else ".") + " Pings are not taken."}
        )
    if not driver.is_online:
        raise ValidationError({"is_online": "You are offline: go online before sending pings."})


def check_pings(pings: Sequence[PingInput], *, now: datetime) -> None:
    """Refuse an empty or oversized batch, or any impossible ping (named `pings.i.field`, as the API names them)."""
    if not pings:
        raise ValidationError({"pings": "Send at least one ping."})
    if len(pings) > MAX_PINGS_PER_REQUEST:
        raise ValidationError(
            {"pings": f"At most {MAX_PINGS_PER_REQUEST} pings per request; got {len(pings)}."}
        )
    errors = {}
    for index, ping in enumerate(pings):
        try:
            validate_ping(ping, now=now)
        except ValidationError as exc:
            errors.update({f"pings.{index}.{name}": messages for name, messages in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def receive_pings(*, driver_id, organisation: Organisation, pings: Sequence[PingInput]) -> PingsReceived:
    """Store a driver's pings (one or a batch, all or none) and run their stops' geofences."""
    check_pings(pings, now=timezone.now())
    driver = lock(Driver.objects).get(id=driver_id, organisation=organisation)
    driver_may_ping(driver)
    ordered = sorted(pings, key=lambda ping: ping.recorded_at)
    record_pings(driver=driver, pings=ordered)
    return PingsReceived(
        stored=len(ordered), changes=track_stops(driver=driver, organisation=organisation, pings=ordered)
    )


def _fence(order: Order, kind: str) -> geofence.Fence:
    point = order.pickup_location if kind == GeofenceVisit.Kind.PICKUP else order.dropoff_location
    radius = order.pickup_geofence_m if kind == GeofenceVisit.Kind.PICKUP else order.dropoff_geofence_m
    return geofence.Fence(lat=point.y, lon=point.x, radius_m=float(radius or geofence.DEFAULT_RADIUS_M))


def _state(visit: GeofenceVisit | None) -> geofence.State:
    if visit is None:
        return geofence.State()
    return geofence.State(
        phase=geofence.Phase(visit.phase),
        last_at=visit.last_ping_at,
        run_count=visit.run_count,
        run_started_at=visit.run_started_at,
        entered_at=visit.entered_at,
        exited_at=visit.exited_at,
    )


def track_stops(
    *, driver: Driver, organisation: Organisation, pings: Sequence[PingInput]
) -> list[GeofenceChange]:
    """Feed pings (oldest first) to the geofence of every stop the driver is heading for or
    still at. Runs under the driver's row lock (receive_pings)."""
    open_visits = {
        (visit.order_id, visit.kind): visit
        for visit in GeofenceVisit.objects.filter(driver=driver).exclude(phase=GeofenceVisit.Phase.LEFT)
    }
    watched = {
        (order.id, WATCHED_STOP[order.status]): order
        for order in Order.objects.filter(driver=driver, status__in=list(WATCHED_STOP))
    }
    # A stop the driver arrived at stays watched until they leave it, whatever its order did.
    for (order_id, kind), visit in open_visits.items():
        if visit.phase == GeofenceVisit.Phase.INSIDE and (order_id, kind) not in watched:
            watched[(order_id, kind)] = visit.order
    trackers = [
        _StopTracker(driver, organisation, order, kind, open_visits.get((order_id, kind)))
        for (order_id, kind), order in watched.items()
    ]
    # Ping by ping across all stops, so the events come in the order things happened.
    return [change for ping in pings for tracker in trackers if (change := tracker.feed(ping))]


class _StopTracker:
    """One stop's geofence over a request's pings, its visit row kept in step."""

    def __init__(self, driver, organisation, order, kind, visit: GeofenceVisit | None) -> None:
        self.driver, self.organisation, self.order, self.kind = driver, organisation, order, kind
        self.fence = _fence(order, kind)
        self.visit = visit
        self.state = _state(visit)
        self.run = list(visit.evidence.get("run", [])) if visit else []

    def feed(self, ping: PingInput) -> GeofenceChange | None:
        fix = geofence.Fix(lat=ping.lat, lon=ping.lon, at=ping.recorded_at, accuracy_m=ping.accuracy_m)
        before = self.state
        result = geofence.step(self.fence, self.state, fix, GEOFENCE_RULE)
        state = self.state = result.state
        if result.stale or result.evidence.reading == "unsure":
            return None
        counted = state.run_count or result.entered or result.exited
        self.run = [*self.run, result.evidence.as_dict()][-EVIDENCE_KEPT:] if counted else []
        if self.visit is None and state.phase == geofence.Phase.OUTSIDE:
            return None  # nothing to remember about a stop the driver is nowhere near
        if self.visit is None:
            self.visit = GeofenceVisit(
                organisation=self.organisation,
                driver=self.driver,
                order=self.order,
                kind=self.kind,
                radius_m=self.fence.radius_m,
                exit_radius_m=GEOFENCE_RULE.exit_radius_m(self.fence.radius_m),
            )
        change = None
        if result.entered:
            self.visit.evidence = {**self.visit.evidence, "entry": self.run}
            change = _arrived(self.visit, self.order, state, self.run, self.organisation, self.driver)
        elif result.exited:
            self.visit.evidence = {**self.visit.evidence, "exit": self.run}
            change = _left(self.visit, state, self.run, self.organisation)
        if state != before:
            _save(self.visit, state, self.run)
        if state.phase == geofence.Phase.LEFT:  # a closed visit; a return opens a new one
            self.visit, self.state, self.run = None, geofence.State(last_at=state.last_at), []
        return change


def _save(visit: GeofenceVisit, state: geofence.State, run: list) -> None:
    visit.phase = state.phase.value
    visit.last_ping_at = state.last_at
    visit.run_count = state.run_count
    visit.run_started_at = state.run_started_at
    visit.entered_at = state.entered_at
    visit.exited_at = state.exited_at
    visit.evidence = {**visit.evidence, "run": run if state.run_count else []}
    visit.save()


def _evidence_sentence(run: list) -> str:
    return "; ".join(
        f"{item['distance_m']:.0f} m ± {item['accuracy_m']:g} m at {item['at'][11:19]}" for item in run
    )


def _arrived(visit, order, state, run, organisation, driver) -> GeofenceChange:
    where = KIND_WORDS[visit.kind]
    reason = (
        f"Arrived at the {where} by GPS: {len(run)} pings within {visit.radius_m:g} m "
        f"({_evidence_sentence(run)})."
    )
    order.refresh_from_db(fields=["status"])
    for action in ARRIVAL_STEPS.get((visit.kind, order.status), ()):
        try:
            transition_order(
                order_id=order.id,
                organisation=organisation,
                action=action,
                actor=GEOFENCE_ACTOR,
                reason=reason,
                held_by=driver,
            )
        except (InvalidTransition, ConcurrentChange, ValidationError) as exc:
            # The order moved meanwhile (the driver pressed the button, a dispatcher took it
            # back): the visit is still recorded.
            logger.info("geofence arrival of %s not applied: %s", order.id, exc)
            break
    _event("geofence.entered", visit, state.entered_at, reason, organisation)
    return GeofenceChange(order.id, visit.kind, "arrived", state.entered_at, visit.pk)


def _left(visit, state, run, organisation) -> GeofenceChange:
    reason = (
        f"Left the {KIND_WORDS[visit.kind]} by GPS: {len(run)} pings beyond {visit.exit_radius_m:g} m "
        f"({_evidence_sentence(run)})."
    )
    _event("geofence.exited", visit, state.exited_at, reason, organisation)
    return GeofenceChange(visit.order_id, visit.kind, "left", state.exited_at, visit.pk)


def _event(event_type: str, visit: GeofenceVisit, at: datetime, reason: str, organisation) -> None:
    if visit.pk is None:
        visit.save()
    record_event(
        organisation=organisation,
        event_type=event_type,
        subject_type="order",
        subject_id=visit.order_id,
        actor=GEOFENCE_ACTOR,
        reason=reason,
        payload={
            "order_id": str(visit.order_id),
            "driver_id": str(visit.driver_id),
            "stop": visit.kind,
            "at": at.isoformat(),
            "radius_m": visit.radius_m,
            "exit_radius_m": visit.exit_radius_m,
        },
    )
