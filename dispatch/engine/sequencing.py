"""Sequencing: the order in which a driver makes their remaining stops, and when they get there.

A pure module (no Django): plain stops in, an ordered plan with ETAs out, on any clock the caller
chooses (epoch seconds in the product). VROOM (pyvroom) solves the vehicle routing problem:
pickup-before-delivery pairs (shipments), time windows, service times, capacities in grams and
millilitres, and no pickup after the shift ends. Travel seconds come from a `TravelTimes`, so
road times plug in without touching this module.

VROOM treats time windows as hard: when they cannot all be kept (a driver already running
late), it would leave stops out. A driver's route must keep every stop, so the plan is the best
of a few complete candidates, ranked by overload, then lateness summed over the stops, then
when the route ends:
- VROOM with the real windows (kept when every stop fits: nothing late),
- VROOM with the closes relaxed (the shortest route that still visits everything),
- the closing windows first (earliest close next, pickups before their drop-offs),
- the current order.
So closing windows win over a shorter drive whenever they would otherwise be missed.

`plan_runs` plans a hub's multi-stop run: several vehicles leave one depot with the parcels and
come back, each stop inside its window; what fits on no vehicle is returned as unassigned.
"""

import dataclasses
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import vroom

from dispatch.engine.model import StopKind
from dispatch.engine.travel import TravelTimes

INF = math.inf
# VROOM works in integers: times in seconds from the plan's start, loads in grams and millilitres.
NO_END = 10**9  # seconds: "no closing time" (about 31 years)
NO_LIMIT = 10**12  # grams or millilitres: "no capacity limit"
EXPLORATION_LEVEL = 5


@dataclass(frozen=True)
class Task:
    """One stop still to make: pick up or drop off one order, inside its window."""

    key: Hashable  # the caller's id for the stop
    order_id: Hashable
    kind: StopKind
    lat: float
    lon: float
    open_s: float = 0.0
    close_s: float = INF  # a drop-off's promise; a pickup's latest start
    service_s: float = 0.0
    weight_kg: float = 0.0  # what the order weighs and fills (positive for both stops)
    volume_l: float = 0.0


@dataclass(frozen=True)
class Vehicle:
    """Where and when the driver starts from, what their vehicle carries, when the shift ends."""

    id: Hashable
    lat: float
    lon: float
    start_s: float
    capacity_kg: float = INF
    capacity_l: float = INF
    shift_end_s: float = INF  # no pickup starts after this
    end: tuple[float, float] | None = None  # (lat, lon) to come back to: a hub run's depot


@dataclass(frozen=True)
class PlannedStop:
    key: Hashable
    arrival_s: float  # when the driver gets there
    begin_s: float  # when the stop starts (after waiting for its window to open)
    late_s: float  # how far the start is past the window's close


@dataclass(frozen=True)
class Plan:
    vehicle_id: Hashable
    stops: tuple[PlannedStop, ...]
    late_s: float  # summed over the stops
    end_s: float  # when the last stop is done (or the vehicle is back at its end)
    overload: float = 0.0  # the most kg (or litres) over capacity anywhere on the route
    method: str = ""  # which candidate won: "vroom", "vroom-relaxed", "closing-first", "current"
    unassigned: tuple = ()  # keys no vehicle could take (hub runs only)

    @property
    def keys(self) -> list:
        return [stop.key for stop in self.stops]

    def eta(self, key) -> float:
        return next(stop.arrival_s for stop in self.stops if stop.key == key)


def _grams(kg: float) -> int:
    return NO_LIMIT if math.isinf(kg) else math.ceil(kg * 1000 - 1e-6)


def _capacity(vehicle: Vehicle) -> list[int]:
    return [_grams(vehicle.capacity_kg), _grams(vehicle.capacity_l)]


def _window(open_s: float, close_s: float, start_s: float) -> vroom.TimeWindow | None:
    """The window relative to the start; None when it closed before the start."""
    opens = max(0, math.ceil(open_s - start_s))
    closes = NO_END if math.isinf(close_s) else math.floor(close_s - start_s)
    if closes < opens:
        return None
    return vroom.TimeWindow(opens, min(closes, NO_END))


def duration_matrix(vehicles: Sequence[Vehicle], tasks: Sequence[Task], travel: TravelTimes):
    """Seconds between every place: the vehicles' starts, their ends, then the tasks."""
    points = [(v.lat, v.lon) for v in vehicles]
    points += [v.end for v in vehicles if v.end is not None]
    points += [(t.lat, t.lon) for t in tasks]
    return np.asarray(travel.matrix_s(points, points), dtype=float)


def _solve(
    vehicles: Sequence[Vehicle],
    tasks: Sequence[Task],
    seconds: np.ndarray,
    *,
    relaxed: bool,
    exploration_level: int,
) -> tuple[dict, list] | None:
    """VROOM's routes (vehicle index -> task indices in order) and the unassigned task indices;
    None when a window closed before the start (hard windows cannot be met at all)."""
    start_s = min(v.start_s for v in vehicles)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.rint(seconds).astype(np.uint32))
    n_ends = sum(1 for v in vehicles if v.end is not None)
    end_row = len(vehicles)
    for index, vehicle in enumerate(vehicles):
        end = None
        if vehicle.end is not None:
            end, end_row = end_row, end_row + 1
        problem.add_vehicle(
            vroom.Vehicle(
                index,
                start=index,
                end=end,
                capacity=vroom.Amount(_capacity(vehicle)),
                time_window=vroom.TimeWindow(int(vehicle.start_s - start_s), NO_END),
            )
        )
    first = len(vehicles) + n_ends
    pickups = {t.order_id: k for k, t in enumerate(tasks) if t.kind == "pickup"}
    shift_end = min(v.shift_end_s for v in vehicles)
    for k, task in enumerate(tasks):
        close = task.close_s
        if task.kind == "pickup":
            close = min(close if not relaxed else INF, shift_end)
        elif relaxed:
            close = INF
        window = _window(task.open_s, close, start_s)
        if window is None:
            return None
        task_window = [window]
        amount = vroom.Amount([_grams(task.weight_kg), _grams(task.volume_l)])
        if task.kind == "dropoff" and task.order_id in pickups:
            continue  # added with its pickup, as a shipment
        if task.kind == "pickup" and any(t.kind == "dropoff" and t.order_id == task.order_id for t in tasks):
            drop = next(j for j, t in enumerate(tasks) if t.kind == "dropoff" and t.order_id == task.order_id)
            drop_task = tasks[drop]
            drop_window = _window(drop_task.open_s, INF if relaxed else drop_task.close_s, start_s)
            if drop_window is None:
                return None
            problem.add_shipment(
                vroom.ShipmentStep(
                    k, location=first + k, default_service=int(task.service_s), time_windows=task_window
                ),
                vroom.ShipmentStep(
                    drop,
                    location=first + drop,
                    default_service=int(drop_task.service_s),
                    time_windows=[drop_window],
                ),
                amount=amount,
            )
        else:
            # A drop-off of an order on board (loaded at the start) or a lone pickup.
            load = {"delivery": amount} if task.kind == "dropoff" else {"pickup": amount}
            problem.add_job(
                vroom.Job(
                    k,
                    location=first + k,
                    default_service=int(task.service_s),
                    time_windows=task_window,
                    **load,
                )
            )
    routes: dict = {}
    frame = problem.solve(exploration_level=exploration_level, nb_threads=1).routes
    for vehicle_id, kind, task_id in zip(frame["vehicle_id"], frame["type"], frame["id"], strict=True):
        if kind in ("start", "end", "break"):
            continue
        routes.setdefault(int(vehicle_id), []).append(int(task_id))
    assigned = {k for order in routes.values() for k in order}
    return routes, sorted(set(range(len(tasks))) - assigned)


def walk(
    vehicle: Vehicle, tasks: Sequence[Task], order: Sequence[int], seconds: np.ndarray, row0: int = 0
) -> Plan:
    """Drive `order` (task indices; `seconds` rows: row0 the vehicle's start, the tasks last) and
    time it: travel, wait for the window to open, serve. Lateness is counted, not refused; so is
    overload (what is on board at the start: the drop-offs in `order` without their pickup)."""
    first = seconds.shape[0] - len(tasks)
    t, prev = vehicle.start_s, row0
    on_board = [tasks[k] for k in order if tasks[k].kind == "dropoff" and not _has_pickup(tasks, tasks[k])]
    kg = sum(x.weight_kg for x in on_board)
    litres = sum(x.volume_l for x in on_board)
    overload = max(0.0, kg - vehicle.capacity_kg, litres - vehicle.capacity_l)
    planned, late = [], 0.0
    for k in order:
        task = tasks[k]
        arrival = t + float(seconds[prev, first + k])
        begin = max(arrival, task.open_s)
        close = min(task.close_s, vehicle.shift_end_s) if task.kind == "pickup" else task.close_s
        late_here = max(0.0, begin - close)
        late += late_here
        sign = 1 if task.kind == "pickup" else -1
        kg += sign * task.weight_kg
        litres += sign * task.volume_l
        overload = max(overload, kg - vehicle.capacity_kg, litres - vehicle.capacity_l)
        planned.append(PlannedStop(task.key, arrival, begin, late_here))
        t = begin + task.service_s
        prev = first + k
    return Plan(vehicle.id, tuple(planned), late, t, overload)


def _has_pickup(tasks: Sequence[Task], dropoff: Task) -> bool:
    return any(t.kind == "pickup" and t.order_id == dropoff.order_id for t in tasks)


def _precedence_ok(tasks: Sequence[Task], order: Sequence[int]) -> bool:
    seen = set()
    for k in order:
        task = tasks[k]
        if task.kind == "dropoff" and _has_pickup(tasks, task) and task.order_id not in seen:
            return False
        if task.kind == "pickup":
            seen.add(task.order_id)
    return len(order) == len(tasks) and set(order) == set(range(len(tasks)))


def _closing_first(tasks: Sequence[Task], seconds: np.ndarray) -> list[int]:
    """Earliest close next among the stops that may come next (a drop-off after its pickup);
    ties go to the nearer stop."""
    first = seconds.shape[0] - len(tasks)
    left, done, order, prev = set(range(len(tasks))), set(), [], 0
    while left:
        ready = [
            k
            for k in left
            if tasks[k].kind == "pickup" or not _has_pickup(tasks, tasks[k]) or tasks[k].order_id in done
        ]
        k = min(ready, key=lambda k: (tasks[k].close_s, seconds[prev, first + k], k))
        order.append(k)
        left.discard(k)
        if tasks[k].kind == "pickup":
            done.add(tasks[k].order_id)
        prev = first + k
    return order


def _rank(plan: Plan) -> tuple:
    return (round(plan.overload, 3), round(plan.late_s), round(plan.end_s, 3))


def sequence_route(
    vehicle: Vehicle,
    tasks: Sequence[Task],
    travel: TravelTimes,
    *,
    exploration_level: int = EXPLORATION_LEVEL,
) -> Plan:
    """The best order for the driver's remaining stops, with each stop's ETA (see the module's
    docstring for how candidates are ranked). `tasks` in their current order."""
    if vehicle.end is not None:
        raise ValueError("a driver's route ends at its last stop; use plan_runs for a depot run")
    tasks = list(tasks)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    if not tasks:
        return Plan(vehicle.id, (), 0.0, vehicle.start_s, method="current")
    seconds = duration_matrix([vehicle], tasks, travel)
    current = list(range(len(tasks)))
    candidates = []
    if _precedence_ok(tasks, current):
        candidates.append((walk(vehicle, tasks, current, seconds), "current"))
    candidates.append((walk(vehicle, tasks, _closing_first(tasks, seconds), seconds), "closing-first"))
    for relaxed in (False, True):
        solved = _solve([vehicle], tasks, seconds, relaxed=relaxed, exploration_level=exploration_level)
        if solved is None:
            continue
        routes, unassigned = solved
        if unassigned:
            continue
        order = routes.get(0, [])
        candidates.append((walk(vehicle, tasks, order, seconds), "vroom-relaxed" if relaxed else "vroom"))
        if not relaxed:
            break  # every window kept: nothing is late, no need to relax
    best, method = min(candidates, key=lambda c: _rank(c[0]))
    return dataclasses.replace(best, method=method)


def plan_runs(
    vehicles: Sequence[Vehicle],
    tasks: Sequence[Task],
    travel: TravelTimes,
    *,
    exploration_level: int = EXPLORATION_LEVEL,
) -> list[Plan]:
    """A hub's run: every vehicle starts at its start (the depot) and returns to its `end`;
    `tasks` are drop-offs loaded at the depot (or pickup/drop-off pairs). One plan per vehicle
    (empty for a vehicle not needed); the first plan's `unassigned` lists the stops no vehicle
    could take inside its window and capacity."""
    if not vehicles:
        raise ValueError("a run needs at least one vehicle")
    tasks = list(tasks)
    seconds = duration_matrix(vehicles, tasks, travel)
    solved = _solve(vehicles, tasks, seconds, relaxed=False, exploration_level=exploration_level)
    if solved is None:
        raise ValueError("a stop's window closed before the run starts")
    routes, unassigned = solved
    end_rows, row = {}, len(vehicles)
    for index, vehicle in enumerate(vehicles):
        if vehicle.end is not None:
            end_rows[index], row = row, row + 1
    plans = [
        _walk_run(vehicle, tasks, routes.get(index, []), seconds, index, end_rows.get(index))
        for index, vehicle in enumerate(vehicles)
    ]
    missing = tuple(tasks[k].key for k in sorted(unassigned))
    plans[0] = dataclasses.replace(plans[0], unassigned=missing)
    return plans


def _walk_run(vehicle, tasks, order, seconds, start_row: int, end_row: int | None) -> Plan:
    """walk() for one vehicle of a multi-vehicle matrix, back to its end."""
    plan = walk(vehicle, tasks, order, seconds, row0=start_row)
    end_s = plan.end_s
    if end_row is not None:
        last = (seconds.shape[0] - len(tasks) + order[-1]) if order else start_row
        end_s += float(seconds[last, end_row])
    return Plan(vehicle.id, plan.stops, plan.late_s, end_s, plan.overload, "vroom")
