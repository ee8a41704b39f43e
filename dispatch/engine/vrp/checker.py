"""Independent feasibility check of a benchmark solution: recomputes the distance from the
coordinates by the family's convention and replays every route's schedule. Shares nothing
with the solver but the instance.

A route starts at the depot at its opening time, may wait at a customer until its window
opens, must start service by the window's end, and must be back at the depot by its closing
time. Travel time equals arc length. A Li & Lim pickup comes before its delivery, on the
same route; the load never exceeds the capacity.
"""

import itertools
from dataclasses import dataclass, field

from dispatch.engine.vrp.instance import Instance

EPSILON = 1e-6  # float slack for Li & Lim's unrounded times (Solomon sums exact tenths)


@dataclass(frozen=True)
class Report:
    vehicles: int
    distance: float
    violations: tuple[str, ...] = field(default=())

    @property
    def feasible(self) -> bool:
        return not self.violations


def check(instance: Instance, routes) -> Report:
    """`routes`: lists of instance positions (depot left out)."""
    problems: list[str] = []
    seen: dict[int, int] = {}
    for r, route in enumerate(routes, start=1):
        if not route:
            problems.append(f"route {r}: empty")
        for pos in route:
            if not 0 < pos < instance.size:
                problems.append(f"route {r}: {pos} is not a customer")
            elif pos in seen:
                problems.append(f"node {instance.ids[pos]}: visited twice (routes {seen[pos]} and {r})")
            else:
                seen[pos] = r
    missing = [instance.ids[p] for p in range(1, instance.size) if p not in seen]
    if missing:
        problems.append(f"not visited: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if len(routes) > instance.max_vehicles:
        problems.append(f"{len(routes)} routes, more than the {instance.max_vehicles} vehicles")
    if problems:  # the schedule is meaningless on a broken partition
        return Report(vehicles=len(routes), distance=float("nan"), violations=tuple(problems))
    for r, route in enumerate(routes, start=1):
        problems += _route_problems(instance, r, route)
    for p, d in instance.pairs:
        if seen[p] != seen[d]:
            problems.append(f"pair {instance.ids[p]}->{instance.ids[d]}: on routes {seen[p]} and {seen[d]}")
    return Report(vehicles=len(routes), distance=_distance(instance, routes), violations=tuple(problems))


def _legs(route):
    stops = (0, *route, 0)
    return itertools.pairwise(stops)


def _distance(instance: Instance, routes) -> float:
    if instance.family == "solomon":
        return sum(instance.arc_tenths(a, b) for route in routes for a, b in _legs(route)) / 10
    return sum(instance.arc(a, b) for route in routes for a, b in _legs(route))


def _route_problems(instance: Instance, r: int, route) -> list[str]:
    problems = []
    name = instance.ids
    clock = float(instance.ready[0])
    load = peak = 0
    position = {pos: k for k, pos in enumerate(route)}
    for a, b in _legs(route):
        clock += instance.service[a] + instance.arc(a, b)
        if b == 0:
            if clock > instance.due[0] + EPSILON:
                problems.append(
                    f"route {r}: back at the depot at {clock:.2f}, after it closes at {instance.due[0]}"
                )
            continue
        if clock > instance.due[b] + EPSILON:
            problems.append(
                f"route {r}: node {name[b]} reached at {clock:.2f}, after its window ends at {instance.due[b]}"
            )
        clock = max(clock, instance.ready[b])
        load += instance.demand[b]
        peak = max(peak, load)
    if peak > instance.capacity:
        problems.append(f"route {r}: load {peak} exceeds the capacity {instance.capacity}")
    for p, d in instance.pairs:
        if p in position and d in position and position[d] < position[p]:
            problems.append(f"route {r}: delivery {name[d]} before its pickup {name[p]}")
    return problems
