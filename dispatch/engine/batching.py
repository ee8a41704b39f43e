"""Batching: insert new orders into a driver's existing route where that is cheapest and feasible.

A route is a sequence of stops after the point where the driver is next free (`Driver.lat/lon`
at `available_at_s`). A schedule walks it: travel, wait for the stop's window to open, serve.
A route is feasible when the load never exceeds the vehicle's kg and litres, no pickup starts
after its window closes or after the driver's shift ends, each pickup comes before its
drop-off, and (when lateness is forbidden) no drop-off starts after its promise.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from dispatch.engine.model import Driver, Order, Stop
from dispatch.engine.travel import DEFAULT_VEHICLE, TravelTimes, matrix_s


@dataclass(frozen=True)
class Schedule:
    begins: tuple[float, ...]  # when each stop starts
    end_s: float  # when the last stop is done (or the start, for an empty route)
    late_s: float  # drop-off lateness summed over the route


@dataclass(frozen=True)
class Insertion:
    route: tuple[Stop, ...]
    schedule: Schedule
    objective: float
    travel_to_pickup_s: float
    wait_at_pickup_s: float
    pickup_at_s: float
    dropoff_at_s: dict  # new order id -> drop-off start
    delay_to_others_s: float
    late_added_s: float
    added_route_s: float


def schedule(
    driver: Driver, route: Sequence[Stop], seconds: np.ndarray, index: Sequence[int], *, forbid_late: bool
) -> Schedule | None:
    """Walk `route` (with `index[k]` its stop's row in `seconds`, row 0 the start); None if infeasible."""
    t = driver.available_at_s
    kg, litres = driver.load_kg, driver.load_l
    prev = 0
    begins = []
    late = 0.0
    for stop, row in zip(route, index, strict=True):
        t += float(seconds[prev, row])
        begin = max(t, stop.open_s)
        if stop.kind == "pickup":
            if begin > stop.close_s or begin > driver.shift_end_s:
                return None
        elif begin > stop.close_s:
            if forbid_late:
                return None
            late += begin - stop.close_s
        kg += stop.weight_kg
        litres += stop.volume_l
        if kg > driver.capacity_kg + 1e-9 or litres > driver.capacity_l + 1e-9:
            return None
        begins.append(begin)
        t = begin + stop.service_s
        prev = row
    return Schedule(tuple(begins), t, late)


def orders_in(route: Sequence[Stop]) -> set[Hashable]:
    return {s.order_id for s in route}


def best_insertion(
    driver: Driver,
    orders: Sequence[Order],
    travel: TravelTimes,
    *,
    forbid_late: bool,
    max_batch_size: int,
    w_delivery: float = 1.0,
    w_others: float = 1.0,
    w_route: float = 0.1,
    late_penalty: float = 5.0,
) -> Insertion | None:
    """The cheapest feasible plan that adds `orders` (inserted one after the other) to the route.

    The objective is w_delivery * (sum of the new drop-off starts) + w_others * (sum of the
    existing drop-off starts) + late_penalty * lateness + w_route * end of the plan.
    """
    old = list(driver.route)
    if len(orders_in(old)) + len(orders) > max_batch_size:
        return None
    new_stops = [s for o in orders for s in o.stops()]
    stops = old + new_stops
    points = [(driver.lat, driver.lon)] + [(s.lat, s.lon) for s in stops]
    seconds = matrix_s(
        travel, points, points, depart_at=driver.available_at_s, vehicle_type=driver.vehicle_type
    )
    row_of = {id(s): k + 1 for k, s in enumerate(stops)}
    new_ids = {o.id for o in orders}

    def objective(route, sched):
        new_sum = sum(
            b
            for s, b in zip(route, sched.begins, strict=True)
            if s.kind == "dropoff" and s.order_id in new_ids
        )
        old_sum = sum(
            b
            for s, b in zip(route, sched.begins, strict=True)
            if s.kind == "dropoff" and s.order_id not in new_ids
        )
        return w_delivery * new_sum + w_others * old_sum + late_penalty * sched.late_s + w_route * sched.end_s

    base = schedule(driver, old, seconds, [row_of[id(s)] for s in old], forbid_late=False)
    if base is None:  # the current plan is already infeasible (e.g. capacity changed): add nothing
        return None
    route = old
    for order in orders:
        pickup, dropoff = (
            next(s for s in new_stops if s.order_id == order.id and s.kind == "pickup"),
            next(s for s in new_stops if s.order_id == order.id and s.kind == "dropoff"),
        )
        best = None
        for i in range(len(route) + 1):
            for j in range(i, len(route) + 1):
                candidate = [*route[:i], pickup, *route[i:j], dropoff, *route[j:]]
                sched = schedule(
                    driver, candidate, seconds, [row_of[id(s)] for s in candidate], forbid_late=False
                )
                if sched is None:
                    continue
                if forbid_late and sched.late_s > base.late_s + 1e-9:
                    continue
                value = objective(candidate, sched)
                if best is None or value < best[0] - 1e-9:
                    best = (value, candidate, sched)
        if best is None:
            return None
        route = best[1]
    sched = schedule(driver, route, seconds, [row_of[id(s)] for s in route], forbid_late=False)
    assert sched is not None
    begins = dict(zip(((s.order_id, s.kind) for s in route), sched.begins, strict=True))
    first_pickup = min(
        range(len(route)), key=lambda k: (route[k].order_id not in new_ids or route[k].kind != "pickup", k)
    )
    pickup_at = sched.begins[first_pickup]
    prev_done = (
        driver.available_at_s
        if first_pickup == 0
        else sched.begins[first_pickup - 1] + route[first_pickup - 1].service_s
    )
    prev_row = 0 if first_pickup == 0 else row_of[id(route[first_pickup - 1])]
    leg = float(seconds[prev_row, row_of[id(route[first_pickup])]])
    travel_to_pickup = prev_done + leg - driver.available_at_s
    wait = max(0.0, pickup_at - (prev_done + leg))
    old_begins = dict(zip(((s.order_id, s.kind) for s in old), base.begins, strict=True))
    delay_others = sum(begins[key] - old_begins[key] for key in old_begins if key[1] == "dropoff")
    return Insertion(
        route=tuple(route),
        schedule=sched,
        objective=objective(route, sched) - objective(old, base),
        travel_to_pickup_s=travel_to_pickup,
        wait_at_pickup_s=wait,
        pickup_at_s=pickup_at,
        dropoff_at_s={o.id: begins[(o.id, "dropoff")] for o in orders},
        delay_to_others_s=max(0.0, delay_others),
        late_added_s=max(0.0, sched.late_s - base.late_s),
        added_route_s=sched.end_s - base.end_s,
    )


def fastest_dropoff_s(
    order: Order, travel: TravelTimes, now_s: float, vehicle_types: Sequence[str] = (DEFAULT_VEHICLE,)
) -> float:
    """The earliest the order could be dropped off: a driver of the fastest of `vehicle_types`
    waiting at the pickup right now."""
    leg = min(
        float(
            matrix_s(
                travel,
                [(order.pickup_lat, order.pickup_lon)],
                [(order.dropoff_lat, order.dropoff_lon)],
                depart_at=now_s,
                vehicle_type=vehicle_type,
            )[0, 0]
        )
        for vehicle_type in vehicle_types
    )
    return max(max(now_s, order.pickup_open_s) + order.pickup_service_s + leg, order.dropoff_open_s)


def bundle_same_pickup(
    orders: Sequence[Order], *, max_batch_size: int, ready_window_s: float
) -> list[list[Order]]:
    """Group orders that share a pickup (id, or else the same place) and are ready close together.

    Orders are grouped by pickup, sorted by when the pickup opens, and cut into runs of at most
    `max_batch_size` whose opening times lie within `ready_window_s` of the run's first. Orders
    with different requirements or clients are never bundled. Deterministic: the input order
    decides ties.
    """
    groups: dict = {}
    for o in orders:
        key = (
            o.pickup_id if o.pickup_id is not None else (round(o.pickup_lat, 5), round(o.pickup_lon, 5)),
            o.requirements,
        )
        groups.setdefault(key, []).append(o)
    units: list[list[Order]] = []
    for group in groups.values():
        group = sorted(group, key=lambda o: o.pickup_open_s)
        run: list[Order] = []
        for o in group:
            if run and (
                len(run) >= max_batch_size or o.pickup_open_s - run[0].pickup_open_s > ready_window_s
            ):
                units.append(run)
                run = []
            run.append(o)
        if run:
            units.append(run)
    position = {o.id: k for k, o in enumerate(orders)}
    units.sort(key=lambda u: position[u[0].id])
    return units
