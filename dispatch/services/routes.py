"""Writes for drivers' routes: the stops a driver makes, in order, with live ETAs.

A driver has one ACTIVE route. When an order is assigned to them its pickup and drop-off are
inserted where the matching engine plans them (engine.batching.best_insertion, the same
insertion a round priced); the stops are marked arrived and completed as the order moves, and
removed when the order leaves the driver (released, reassigned, cancelled, failed). Each
change runs inside the order's transition (follow_order), under a lock on the route row: the
driver, then the order, then the route, as everywhere else.

ETAs are worked out from the driver's last position (engine.sequencing.walk): a stop's ETA is
when it is planned to start, so never before its window opens. When they drift
past settings.ETA_RESEQUENCE_DRIFT_SECONDS, an insertion makes a stop late, or the travel
times change, the remaining stops are re-sequenced (engine.sequencing.sequence_route) and the
new order is kept when it is better. A stop's ETA that moved by more than
settings.ETA_CHANGE_NOTIFY_SECONDS from the one last announced is recorded as
`order.eta_changed` (webhooks follow; the first ETA of a stop is its baseline, not a change); the driver's app and the live map hear of every route
change once it commits.
"""

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from dispatch import push
from dispatch.engine import batching, sequencing
from dispatch.engine import model as engine
from dispatch.models import Order, OrderStatus, Route, Stop
from dispatch.services.round_inputs import ON_BOARD_STATUSES, epoch_s, stop_from_row, to_engine_order
from dispatch.travel import travel_times
from fleet.models import Driver, Vehicle

# How long a stop takes once the driver is there (no per-order figure yet): finding the
# counter or the door, handing over, the proof of delivery.
SERVICE_SECONDS = {Stop.Kind.PICKUP: 180, Stop.Kind.DROPOFF: 120}
# A new order of the stops is kept only when it saves at least this much (lateness first, then
# the end of the route): a driver's plan should not churn for a few seconds.
RESEQUENCE_MIN_GAIN_S = 60.0
# Where a status leaves the order's stops: (pickup, drop-off) each "open", "arrived" or "done";
# a status not listed takes the order's open stops off the route.
STOPS_BY_STATUS = {
    OrderStatus.ASSIGNED: ("open", "open"),
    OrderStatus.EN_ROUTE_PICKUP: ("open", "open"),
    OrderStatus.ARRIVED_PICKUP: ("arrived", "open"),
    OrderStatus.PICKED_UP: ("done", "open"),
    OrderStatus.ARRIVED_DROPOFF: ("done", "arrived"),
    OrderStatus.DELIVERED: ("done", "done"),
}
SEQUENCE_SHIFT = 10_000  # renumbering moves every stop out of the way first (unique sequence)


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- keeping the route in step with the driver's orders ---------------------------------------


def follow_order(*, order: Order, previous_driver_id, actor: Actor) -> None:
    """Bring the stops in line with the order's new status and driver (called by the order's
    transition, in its transaction, after the order row was locked and saved)."""
    now = timezone.now()
    if previous_driver_id and previous_driver_id != order.driver_id:
        route = _active_route(previous_driver_id)
        if route is not None:
            _take_off(route, order, now=now, actor=actor)
    if order.driver_id is None:
        return
    wanted = STOPS_BY_STATUS.get(order.status)
    route = _active_route(order.driver_id, organisation_id=order.organisation_id, create=wanted is not None)
    if route is None:
        return
    stops = {s.kind: s for s in Stop.objects.filter(route=route, order=order)}
    if wanted is None:
        _take_off(route, order, now=now, actor=actor)
        return
    inserted = False
    if not stops:
        _insert(route, order, now=now)
        stops = {s.kind: s for s in Stop.objects.filter(route=route, order=order)}
        inserted = True
    for kind, state in zip((Stop.Kind.PICKUP, Stop.Kind.DROPOFF), wanted, strict=True):
        stop = stops.get(kind)
        if stop is None:
            continue
        if state in ("arrived", "done") and stop.arrived_at is None:
            stop.arrived_at = now
        if state == "done" and stop.completed_at is None:
            stop.completed_at = now
        stop.save(update_fields=["arrived_at", "completed_at"])
    _after_change(route, now=now, actor=actor, reason="an order was inserted", resequence_if_late=inserted)


def _take_off(route: Route, order: Order, *, now: datetime, actor: Actor) -> None:
    """The order's open stops leave the route; the rest keep their order, numbered without gaps."""
    Stop.objects.filter(route=route, order=order, completed_at=None).delete()
    _renumber(route, _open_stops(route))
    _after_change(route, now=now, actor=actor, reason="an order left the route")


def lock_routes(*, driver_ids) -> None:
    """Lock the drivers, then their active routes (each by id), ahead of the organisation's
    event counter; a transition then changes the routes in follow_order.

    The driver comes first, everywhere (orders.lock_holder, the SLA watch): PostgreSQL checks
    foreign keys at commit, so a transaction that changed stops or wrote a history row waits
    then for the rows they name (the driver, the orders); with every change to a driver's
    route queued on the driver row first, none of them waits on another in a circle."""
    ids = sorted({driver_id for driver_id in driver_ids if driver_id is not None})
    if ids:
        list(lock(Driver.objects).filter(id__in=ids).order_by("id").values_list("id", flat=True))
        list(lock(Route.objects).filter(driver_id__in=ids, status=Route.Status.ACTIVE).order_by("id"))


def _active_route(driver_id, *, organisation_id=None, create: bool = False) -> Route | None:
    """The driver's ACTIVE route, locked after the driver (lock_routes); created when asked."""
    lock_routes(driver_ids=[driver_id])
    route = lock(Route.objects).filter(driver_id=driver_id, status=Route.Status.ACTIVE).first()
    if route is not None or not create:
        return route
    return Route.objects.create(
        organisation_id=organisation_id, driver_id=driver_id, status=Route.Status.ACTIVE
    )


def _stop_row(route: Route, order: Order, kind: str) -> Stop:
    pickup = kind == Stop.Kind.PICKUP
    return Stop(
        route=route,
        order=order,
        kind=kind,
        sequence=0,
        location=order.pickup_location if pickup else order.dropoff_location,
        window_start=order.pickup_window_start if pickup else order.dropoff_window_start,
        window_end=order.pickup_window_end if pickup else order.dropoff_window_end,
        service_s=SERVICE_SECONDS[kind],
    )


def _insert(route: Route, order: Order, *, now: datetime) -> None:
    """Put the order's two stops where the matching engine's insertion puts them (the cheapest
    feasible place in the current plan); after the last stop when no place is feasible (a
    dispatcher's manual assignment may overrule capacity or windows)."""
    new = [_stop_row(route, order, kind) for kind in (Stop.Kind.PICKUP, Stop.Kind.DROPOFF)]
    start, open_stops = _start(route, now)
    movable = [s for s in open_stops if s.arrived_at is None]
    vehicle = _vehicle(route.driver_id)
    driver = engine.Driver(
        id=str(route.driver_id),
        lat=start.lat,
        lon=start.lon,
        capacity_kg=start.capacity_kg,
        capacity_l=start.capacity_l,
        available_at_s=start.start_s,
        load_kg=_on_board(route.driver_id, "weight_kg"),
        load_l=_on_board(route.driver_id, "volume_litres"),
        route=tuple(stop_from_row(s) for s in movable),
        vehicle_type=vehicle.type if vehicle else "car",
    )
    unit = dataclasses.replace(
        to_engine_order(order, zone=None, excluded=set()),
        pickup_service_s=float(SERVICE_SECONDS[Stop.Kind.PICKUP]),
        dropoff_service_s=float(SERVICE_SECONDS[Stop.Kind.DROPOFF]),
    )
    plan = batching.best_insertion(
        driver,
        [unit],
        travel_times(organisation_id=route.organisation_id),
        forbid_late=False,
        max_batch_size=len(movable) + 2,
    )
    rows = {(str(s.order_id), s.kind): s for s in [*movable, *new]}
    ordered = [*movable, *new] if plan is None else [rows[str(s.order_id), s.kind] for s in plan.route]
    fixed = [s for s in open_stops if s.arrived_at is not None]
    for stop in new:
        stop.sequence = SEQUENCE_SHIFT * 2 + (0 if stop.kind == Stop.Kind.PICKUP else 1)
        stop.save()
    _renumber(route, [*fixed, *ordered])
    route.sequenced_by = "insertion"
    route.save(update_fields=["sequenced_by", "updated_at"])


def _vehicle(driver_id) -> Vehicle | None:
    return Vehicle.objects.filter(driver_id=driver_id, is_active=True).first()


def _on_board(driver_id, field: str) -> float:
    """What the driver carries now: their orders picked up and not yet delivered."""
    carried = Order.objects.filter(driver_id=driver_id, status__in=ON_BOARD_STATUSES)
    return float(sum(carried.values_list(field, flat=True)))


def _renumber(route: Route, open_in_order: list[Stop]) -> None:
    """Completed stops first (as they were done), then the open ones in the given order."""
    Stop.objects.filter(route=route).update(sequence=F("sequence") + SEQUENCE_SHIFT)
    done = list(Stop.objects.filter(route=route, completed_at__isnull=False).order_by("completed_at", "id"))
    ordered = [*done, *open_in_order]
    for number, stop in enumerate(ordered, start=1):
        stop.sequence = number
    Stop.objects.bulk_update(ordered, ["sequence"])


# --- ETAs and re-sequencing -------------------------------------------------------------------


def _open_stops(route: Route) -> list[Stop]:
    return list(
        Stop.objects.filter(route=route, completed_at=None).select_related("order").order_by("sequence")
    )


def _start(route: Route, now: datetime) -> tuple[sequencing.Vehicle, list[Stop]]:
    """Where and when the driver is next free, and the open stops in their current order. A
    driver at a stop (arrived, not done) starts from it once its service is over (begun when
    they arrived or when its window opens); with no known position, from the last stop they
    finished or else the first open one."""
    stops = _open_stops(route)
    driver = Driver.objects.only("last_location").get(id=route.driver_id)
    vehicle = _vehicle(route.driver_id)
    point, start_s = driver.last_location, epoch_s(now)
    for stop in stops:
        if stop.arrived_at is not None:
            point = stop.location
            begins = max(epoch_s(stop.arrived_at), epoch_s(stop.window_start))
            start_s = max(start_s, begins + stop.service_s)
    if point is None:  # no ping yet: where they last did something, else their first stop
        done = Stop.objects.filter(route=route, completed_at__isnull=False).order_by("-completed_at").first()
        point = done.location if done else stops[0].location if stops else None
    lat, lon = (point.y, point.x) if point is not None else (0.0, 0.0)
    capacity = (
        (float(vehicle.capacity_kg), float(vehicle.capacity_litres))
        if vehicle
        else (sequencing.INF, sequencing.INF)
    )
    return sequencing.Vehicle(route.driver_id, lat, lon, start_s, *capacity), stops


def _task(stop: Stop) -> sequencing.Task:
    return sequencing.Task(
        key=stop.id,
        order_id=stop.order_id,
        kind=stop.kind,
        lat=stop.location.y,
        lon=stop.location.x,
        open_s=epoch_s(stop.window_start),
        close_s=epoch_s(stop.window_end),
        service_s=float(stop.service_s),
        weight_kg=float(stop.order.weight_kg),
        volume_l=float(stop.order.volume_litres),
    )


def _timed(vehicle: sequencing.Vehicle, stops: list[Stop], travel) -> sequencing.Plan:
    """The ETAs of the movable stops in their current order."""
    tasks = [_task(s) for s in stops]
    seconds = sequencing.duration_matrix([vehicle], tasks, travel)
    return sequencing.walk(vehicle, tasks, list(range(len(tasks))), seconds)


def _after_change(
    route: Route,
    *,
    now: datetime,
    actor: Actor,
    reason: str,
    resequence_if_late: bool = False,
    resequence: bool = False,
) -> None:
    """Retime the route (re-sequencing it when asked, or when asked to if a stop is now late),
    close it once every stop is done, and tell the driver and the live map after commit."""
    vehicle, stops = _start(route, now)
    if not stops:
        route.status = Route.Status.COMPLETED
        route.save(update_fields=["status", "updated_at"])
        transaction.on_commit(partial(push.route_changed, route.organisation_id, route.driver_id))
        return
    fixed = [s for s in stops if s.arrived_at is not None]
    movable = [s for s in stops if s.arrived_at is None]
    travel = travel_times(organisation_id=route.organisation_id)
    plan = _timed(vehicle, movable, travel)
    before = None
    if resequence or (resequence_if_late and plan.late_s > 0):
        better = sequencing.sequence_route(vehicle, [_task(s) for s in movable], travel)
        if _gain(plan, better) >= RESEQUENCE_MIN_GAIN_S:
            before = {
                s.id: (position, s.planned_arrival_at) for position, s in enumerate(movable, len(fixed) + 1)
            }
            by_id = {s.id: s for s in movable}
            movable = [by_id[key] for key in better.keys]
            _renumber(route, [*fixed, *movable])
            route.sequenced_by = better.method
            plan = better
    _store_etas(route, fixed, movable, plan, actor=actor, reason=reason)
    if before is not None:
        _record_resequencing(route, movable, before, first=len(fixed) + 1, actor=actor, reason=reason)
    route.etas_at = now
    route.save(update_fields=["etas_at", "sequenced_by", "updated_at"])
    transaction.on_commit(partial(push.route_changed, route.organisation_id, route.driver_id))


def _record_resequencing(
    route: Route, movable: list[Stop], before: dict, *, first: int, actor, reason
) -> None:
    """`route.resequenced` with each stop the new order moved (position and ETA before and
    after): evidence, for the driver's scorecard, of lateness the system caused."""
    moved = [
        {
            "order_id": str(stop.order_id),
            "stop": stop.kind,
            "from_position": before[stop.id][0],
            "to_position": position,
            "eta_before": before[stop.id][1].isoformat() if before[stop.id][1] else None,
            "eta_after": stop.planned_arrival_at.isoformat() if stop.planned_arrival_at else None,
        }
        for position, stop in enumerate(movable, first)
        if before[stop.id][0] != position
    ]
    if moved:
        record_event(
            organisation=route.organisation_id,
            event_type="route.resequenced",
            subject_type="driver",
            subject_id=route.driver_id,
            actor=actor,
            reason=reason,
            payload={"driver_id": str(route.driver_id), "route_id": str(route.id), "moved": moved},
        )


def _gain(current: sequencing.Plan, candidate: sequencing.Plan) -> float:
    """Seconds saved by the candidate: lateness first, then the end of the route; never a plan
    that overloads more."""
    if candidate.overload > current.overload + 1e-9:
        return 0.0
    if candidate.late_s < current.late_s - 1e-9:
        return current.late_s - candidate.late_s
    if candidate.late_s > current.late_s + 1e-9:
        return 0.0
    return current.end_s - candidate.end_s


def _store_etas(
    route: Route, fixed: list[Stop], movable: list[Stop], plan: sequencing.Plan, *, actor: Actor, reason: str
) -> None:
    """Save each stop's ETA and predicted lateness; announce the ETAs that moved enough."""
    timing = {p.key: p for p in plan.stops}
    notify = timedelta(seconds=settings.ETA_CHANGE_NOTIFY_SECONDS)
    changed = []
    for stop in [*fixed, *movable]:
        planned = timing.get(stop.id)
        if planned is None:  # the driver is at this stop: it starts now, or when its window opens
            stop.planned_arrival_at = max(stop.arrived_at, stop.window_start)
            stop.predicted_late_s = max(0, int((stop.planned_arrival_at - stop.window_end).total_seconds()))
        else:
            stop.planned_arrival_at = moment(planned.begin_s)
            stop.predicted_late_s = round(planned.late_s)
        if stop.announced_arrival_at is None:
            stop.announced_arrival_at = stop.planned_arrival_at  # the first ETA: nothing changed yet
        elif abs(stop.planned_arrival_at - stop.announced_arrival_at) > notify:
            _announce(stop, actor=actor, reason=reason)
            stop.announced_arrival_at = stop.planned_arrival_at
        changed.append(stop)
    Stop.objects.bulk_update(changed, ["planned_arrival_at", "predicted_late_s", "announced_arrival_at"])


def stop_event_payload(stop: Stop) -> dict:
    from dispatch.services.orders import order_event_payload  # the orders service builds on this one

    return {
        **order_event_payload(stop.order),
        "stop": stop.kind,
        "eta": stop.planned_arrival_at.isoformat() if stop.planned_arrival_at else None,
        "window_end": stop.window_end.isoformat(),
        "predicted_late_s": stop.predicted_late_s,
    }


def _announce(stop: Stop, *, actor: Actor, reason: str) -> None:
    previous = stop.announced_arrival_at
    record_event(
        organisation=stop.order.organisation_id,
        client_id=stop.order.client_id,
        event_type="order.eta_changed",
        subject_type="order",
        subject_id=stop.order_id,
        actor=actor,
        reason=reason,
        payload={**stop_event_payload(stop), "previous_eta": previous.isoformat() if previous else None},
    )


@transaction.atomic
def resequence_route(*, driver_id, actor: Actor, reason: str, now: datetime | None = None) -> Route | None:
    """Re-sequence the driver's remaining stops and retime them (a traffic change, a dispatcher's
    request); None when they have no active route."""
    route = _active_route(driver_id)
    if route is None:
        return None
    _after_change(route, now=now or timezone.now(), actor=actor, reason=reason, resequence=True)
    return route


@transaction.atomic
def refresh_route(*, route_id, actor: Actor, now: datetime | None = None) -> Route | None:
    """Retime one route from the driver's latest position; when a stop's ETA drifted by more
    than settings.ETA_RESEQUENCE_DRIFT_SECONDS since the last pass, re-sequence it."""
    driver_id = Route.objects.filter(id=route_id).values_list("driver_id", flat=True).first()
    lock_routes(driver_ids=[driver_id])
    route = lock(Route.objects).filter(id=route_id, status=Route.Status.ACTIVE).first()
    if route is None:
        return None
    now = now or timezone.now()
    vehicle, stops = _start(route, now)
    movable = [s for s in stops if s.arrived_at is None]
    drift = timedelta(seconds=settings.ETA_RESEQUENCE_DRIFT_SECONDS)
    plan = _timed(vehicle, movable, travel_times(organisation_id=route.organisation_id)) if movable else None
    drifted = plan is not None and any(
        s.planned_arrival_at is not None and abs(moment(p.begin_s) - s.planned_arrival_at) > drift
        for s, p in zip(movable, plan.stops, strict=True)
    )
    _after_change(
        route,
        now=now,
        actor=actor,
        reason="the ETAs drifted; the stops were re-sequenced" if drifted else "live ETAs",
        resequence=drifted,
    )
    return route


def active_route_ids(organisation_ids: Iterable | None = None) -> list:
    routes = Route.objects.filter(status=Route.Status.ACTIVE)
    if organisation_ids is not None:
        routes = routes.filter(organisation_id__in=list(organisation_ids))
    return list(routes.order_by("id").values_list("id", flat=True))


def resequence_organisation(*, organisation_id, actor: Actor, reason: str) -> int:
    """Re-sequence every active route of the organisation, each in its own transaction (a
    traffic change): returns how many."""
    done = 0
    for route_id in active_route_ids([organisation_id]):
        driver_id = Route.objects.values_list("driver_id", flat=True).get(id=route_id)
        if resequence_route(driver_id=driver_id, actor=actor, reason=reason) is not None:
            done += 1
    return done
