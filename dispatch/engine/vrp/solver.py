"""Benchmark VRPTW / PDPTW solver around PyVRP's iterated local search (PyVRP 0.14 handles
time windows, capacities and pickup-and-delivery shipments natively).

What the time limit buys, per worker (one worker a core, each with its own seed and its own
late-acceptance history length, a small portfolio; the best result that the checker passes
wins):
- Solomon (minimise distance): one PyVRP run over the whole budget.
- Li & Lim (fewest vehicles, then distance): a route-elimination phase over the first part
  of the budget: from the best feasible solution, drop its smallest route, hand the rest to
  PyVRP as a warm start with one vehicle fewer, and stop at the first feasible solution; repeat
  until an attempt fails. Then a distance phase with the smallest fleet found, warm-started
  from its solution, for the rest of the budget.

PyVRP works on integers. Solomon arcs are whole tenths already (truncated, DIMACS), so they
are exact at scale 10. Li & Lim arcs are unrounded: distances are rounded at scale 1000, travel
times rounded UP, so a schedule that PyVRP finds on time is on time in exact arithmetic too.
"""

import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import FirstFeasible, MultipleCriteria

from dispatch.engine.vrp.checker import Report, check
from dispatch.engine.vrp.instance import Instance

LILIM_SCALE = 1000
# Per worker (a portfolio): late-acceptance history length, and the share of a Li & Lim budget
# spent removing vehicles. PyVRP's default history, 300, suits runs of minutes. Measured with
# 1 CPU-second per run on R101 / RC201 / R208 (4 seeds): history 60 averaged 0.04 / 0.4 / 1.6 %
# above the best known, 300 averaged 0.5 / 0.45 / 0.6 %: each wins a class, so one of each.
# (A 0.7 / 0.4 split of the fleet phase measured no better than 0.5 / 0.5.)
PORTFOLIO = ((60, 0.5), (300, 0.5))
RETURN_MARGIN_S = 0.08  # measured: forking the workers, their last iteration, handing back routes


@dataclass(frozen=True)
class Solved:
    """Routes as lists of positions in the instance (depot left out)."""

    routes: tuple[tuple[int, ...], ...]
    seconds: float


def solve(instance: Instance, *, time_limit: float, workers: int | None = None, seed: int = 0) -> Solved:
    """Best of `workers` independent runs (default: one per core, at most 2), in `time_limit` seconds."""
    started = time.monotonic()
    workers = workers or min(2, os.cpu_count() or 1)
    # One deadline for all (the monotonic clock is system-wide), with room to hand results back.
    deadline = started + max(time_limit - RETURN_MARGIN_S, time_limit / 2)
    if workers == 1:
        routes = [_run(instance, deadline, seed, *PORTFOLIO[0])]
    else:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            runs = [
                pool.submit(_run, instance, deadline, seed + k, *PORTFOLIO[k % 2]) for k in range(workers)
            ]
            routes = [r.result() for r in runs]
    reports = {r: check(instance, r) for r in routes if r is not None}
    feasible = [r for r, report in reports.items() if report.feasible]
    best = min(feasible, key=lambda r: _rank(instance, reports[r]), default=None)
    if best is None:
        raise RuntimeError(f"{instance.name}: no feasible solution found in {time_limit} s")
    return Solved(routes=best, seconds=time.monotonic() - started)


class Deadline:
    """Stops PyVRP at a moment on the monotonic clock. (PyVRP's MaxRuntime starts counting at
    its first call, after the initial local search, and so overruns the budget.)"""

    def __init__(self, at: float):
        self.at = at

    def __call__(self, best_cost: int) -> bool:
        return time.monotonic() >= self.at


def _rank(instance: Instance, report: Report) -> tuple:
    return (report.vehicles, report.distance) if instance.family == "lilim" else (report.distance,)


def _run(instance: Instance, deadline: float, seed: int, history: int, fleet_share: float):
    """One worker. PyVRP warns when it cannot reach feasibility, which is how an attempt with
    one vehicle too few ends: expected here, so silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return _phases(instance, deadline, seed, history, fleet_share)


def _phases(instance: Instance, deadline: float, seed: int, history: int, fleet_share: float):
    data = problem_data(instance)
    params = pyvrp.SolveParams(ils=pyvrp.IteratedLocalSearchParams(history_length=history))

    def run(data, until: float, first: bool = False, initial=None) -> pyvrp.Solution:
        stop = MultipleCriteria([FirstFeasible(), Deadline(until)]) if first else Deadline(until)
        return pyvrp.solve(
            data, stop, seed=seed, params=params, collect_stats=False, initial_solution=initial
        ).best

    if instance.family == "solomon":
        best = run(data, deadline)
        return _routes(instance, data, best) if best.is_feasible() else None
    now = time.monotonic()
    fleet_deadline = now + fleet_share * (deadline - now)
    found = run(data, fleet_deadline, first=True)
    if not found.is_feasible():  # try again with all the time there is
        found = run(data, deadline)
        return _routes(instance, data, found) if found.is_feasible() else None
    best, best_data = found, _with_fleet(data, found.num_routes())
    while best.num_routes() > 1 and time.monotonic() < fleet_deadline:
        smaller = _with_fleet(data, best.num_routes() - 1)
        attempt = run(smaller, fleet_deadline, first=True, initial=_drop_smallest_route(smaller, best))
        if not attempt.is_feasible():
            break
        best, best_data = attempt, _with_fleet(data, attempt.num_routes())
    # Distance phase. A vehicle costs more than the whole current distance, so a route that the
    # search manages to empty on the way is still taken (fewest vehicles first).
    fleet = best_data.vehicle_type(0)
    costly = best_data.replace(vehicle_types=[fleet.replace(fixed_cost=int(best.distance()) + 1)])
    if time.monotonic() < deadline - 0.01:
        polished = run(costly, deadline, initial=pyvrp.Solution(costly, _routes_of(costly, best)))
        if polished.is_feasible() and _key(polished) <= _key(best):
            best = polished
    return _routes(instance, costly, best)


def _key(solution: pyvrp.Solution) -> tuple[int, int]:
    return solution.num_routes(), solution.distance()


def _with_fleet(data: pyvrp.ProblemData, vehicles: int) -> pyvrp.ProblemData:
    return data.replace(vehicle_types=[data.vehicle_type(0).replace(num_available=vehicles)])


def _drop_smallest_route(data: pyvrp.ProblemData, solution: pyvrp.Solution) -> pyvrp.Solution:
    """The solution without its route of fewest visits: a warm start that PyVRP completes."""
    return pyvrp.Solution(data, _routes_of(data, solution)[1:])


def _routes_of(data: pyvrp.ProblemData, solution: pyvrp.Solution) -> list[pyvrp.Route]:
    """The solution's routes rebuilt on `data` (another fleet), fewest visits first."""
    routes = sorted(solution.routes(), key=lambda r: len(r.schedule()))
    return [pyvrp.Route(data, _visits(r), 0) for r in routes]


def _visits(route: pyvrp.Route) -> list[pyvrp.Activity]:
    return [pyvrp.Activity(a.type, a.idx) for a in route.schedule() if a.type != pyvrp.ActivityType.DEPOT]


def problem_data(instance: Instance) -> pyvrp.ProblemData:
    """The instance in PyVRP's integer units (see the module docstring)."""
    n = instance.size
    if instance.family == "solomon":
        scale = 10
        distance = np.array([[instance.arc_tenths(i, j) for j in range(n)] for i in range(n)], dtype=np.int64)
        duration = distance
    else:
        scale = LILIM_SCALE
        exact = np.array([[instance.arc(i, j) for j in range(n)] for i in range(n)]) * scale
        distance = np.rint(exact).astype(np.int64)
        duration = np.ceil(exact - 1e-9).astype(np.int64)
    ready = [t * scale for t in instance.ready]
    due = [t * scale for t in instance.due]
    service = [t * scale for t in instance.service]
    paired = {i for pair in instance.pairs for i in pair}
    clients = [
        pyvrp.Client(
            i, delivery=[instance.demand[i]], service_duration=service[i], tw_early=ready[i], tw_late=due[i]
        )
        for i in range(1, n)
        if i not in paired
    ]
    shipments = []
    for p, d in instance.pairs:
        shipments.append(
            pyvrp.Shipment(
                p,
                d,
                pickup_tw_early=ready[p],
                pickup_tw_late=due[p],
                pickup_service_duration=service[p],
                delivery_tw_early=ready[d],
                delivery_tw_late=due[d],
                delivery_service_duration=service[d],
                amount=[instance.demand[p]],
            )
        )
    fleet = pyvrp.VehicleType(
        num_available=instance.max_vehicles,
        capacity=[instance.capacity],
        tw_early=ready[0],
        tw_late=due[0],
    )
    return pyvrp.ProblemData(
        locations=[pyvrp.Location(x=instance.x[i], y=instance.y[i]) for i in range(n)],
        clients=clients,
        depots=[pyvrp.Depot(0, tw_early=ready[0], tw_late=due[0])],
        vehicle_types=[fleet],
        distance_matrices=[distance],
        duration_matrices=[duration],
        shipments=shipments,
    )


def _routes(
    instance: Instance, data: pyvrp.ProblemData, solution: pyvrp.Solution
) -> tuple[tuple[int, ...], ...]:
    """PyVRP's routes as instance positions (= PyVRP location indices)."""
    out = []
    for route in solution.routes():
        stops = []
        for a in route.schedule():
            if a.type == pyvrp.ActivityType.CLIENT:
                stops.append(data.client(a.idx).location)
            elif a.type == pyvrp.ActivityType.PICKUP:
                stops.append(data.shipment(a.idx).pickup.location)
            elif a.type == pyvrp.ActivityType.DELIVERY:
                stops.append(data.shipment(a.idx).delivery.location)
        if stops:
            out.append(tuple(stops))
    return tuple(out)
