"""Assignment of open orders to drivers.

`solve_round` is the engine: drivers (with their plans), orders and the organisation's rules
in, explained assignments out (see its docstring). `assign` below is the original one-to-one
matcher on straight-line pickup distance, kept for the demo's simple rounds.

`assign`: one-to-one assignment of open orders to idle drivers, minimising pickup distance.

The objective is lexicographic: first as many orders assigned as the constraints allow, then
the least total straight-line distance from each driver to their pickup. A pair is feasible
only if the order's weight fits the driver's capacity and the pickup is within a radius.
Solved exactly with the Hungarian method (scipy's linear_sum_assignment).
"""

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from dispatch.engine.batching import best_insertion, bundle_same_pickup, fastest_dropoff_s
from dispatch.engine.geo import haversine_m, haversine_matrix_m
from dispatch.engine.model import CostTerms, Driver, Order, RoundResult
from dispatch.engine.rules import Rules
from dispatch.engine.travel import TravelTimes, haversine_pairs_m


@dataclass(frozen=True)
class DriverSlot:
    """An idle driver: where they are and how much they can carry."""

    id: Hashable
    lat: float
    lon: float
    capacity_kg: float


@dataclass(frozen=True)
class OrderTask:
    """An open order: where it is picked up and what it weighs."""

    id: Hashable
    lat: float
    lon: float
    weight_kg: float


class Assignment(NamedTuple):
    order_id: Hashable
    driver_id: Hashable
    metres: float


def feasible_costs(
    drivers: Sequence[DriverSlot], orders: Sequence[OrderTask], *, max_radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """The driver x order distance matrix (metres) and the mask of feasible pairs."""
    metres = haversine_matrix_m(
        [d.lat for d in drivers], [d.lon for d in drivers], [o.lat for o in orders], [o.lon for o in orders]
    )
    capacity = np.array([d.capacity_kg for d in drivers], dtype=float)[:, None]
    weight = np.array([o.weight_kg for o in orders], dtype=float)[None, :]
    feasible = (weight <= capacity) & (metres <= max_radius_m)
    return metres, feasible


def assign(
    drivers: Sequence[DriverSlot], orders: Sequence[OrderTask], *, max_radius_m: float
) -> list[Assignment]:
    """The optimal assignment, in the order the orders were given. Infeasible pairs never appear."""
    if not drivers or not orders:
        return []
    metres, feasible = feasible_costs(drivers, orders, max_radius_m=max_radius_m)
    # Drop drivers and orders that have no feasible partner: smaller problem, same optimum.
    rows = np.flatnonzero(feasible.any(axis=1))
    cols = np.flatnonzero(feasible.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return []
    sub_metres = metres[np.ix_(rows, cols)]
    sub_feasible = feasible[np.ix_(rows, cols)]
    # An infeasible pair costs more than any whole set of feasible pairs, so the solver first
    # maximises the number of feasible pairs and then minimises their total distance.
    most_pairs = min(rows.size, cols.size)
    penalty = most_pairs * float(sub_metres[sub_feasible].max()) + 1.0
    cost = np.where(sub_feasible, sub_metres, penalty)
    row_pick, col_pick = linear_sum_assignment(cost)
    picked = [
        (int(cols[c]), int(rows[r])) for r, c in zip(row_pick, col_pick, strict=True) if sub_feasible[r, c]
    ]
    picked.sort()
    return [Assignment(orders[o].id, drivers[d].id, float(metres[d, o])) for o, d in picked]


# --- The round engine: explained, constrained, batched, sparse -----------------------------------


def _unit_sphere(lats, lons) -> np.ndarray:
    phi, lmb = np.radians(np.asarray(lats, dtype=float)), np.radians(np.asarray(lons, dtype=float))
    return np.column_stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])


def _pairs_s(travel: TravelTimes, lats_a, lons_a, lats_b, lons_b) -> np.ndarray:
    pairs = getattr(travel, "pairs_s", None)
    if pairs is not None:
        return np.asarray(pairs(lats_a, lons_a, lats_b, lons_b), dtype=float)
    return np.array(
        [
            float(travel.matrix_s([(a, b)], [(c, d)])[0, 0])
            for a, b, c, d in zip(lats_a, lons_a, lats_b, lons_b, strict=True)
        ]
    )


class _Unit(NamedTuple):
    orders: tuple[Order, ...]

    @property
    def head(self) -> Order:
        return self.orders[0]


def _form_units(
    orders: Sequence[Order], n_free: int, rules: Rules, travel: TravelTimes, now_s: float
) -> list[_Unit]:
    """Orders become units of work; same-pickup orders are bundled when drivers are scarce and
    a driver at the pickup could still keep every promise of the bundle."""
    batching = rules.batching
    if (
        not (batching.enabled and batching.bundle_same_pickup and batching.max_batch_size > 1)
        or len(orders) <= n_free
    ):
        return [_Unit((o,)) for o in orders]
    units = []
    for group in bundle_same_pickup(
        orders, max_batch_size=batching.max_batch_size, ready_window_s=batching.bundle_ready_window_s
    ):
        if len(group) > 1:
            phantom = Driver(
                id=None,
                lat=group[0].pickup_lat,
                lon=group[0].pickup_lon,
                capacity_kg=math.inf,
                available_at_s=now_s,
            )
            plan = best_insertion(phantom, group, travel, forbid_late=True, max_batch_size=len(group))
            if plan is None:
                units.extend(_Unit((o,)) for o in group)
                continue
        units.append(_Unit(tuple(group)))
    return units


def _hard_ok(driver: Driver, unit: _Unit, rules: Rules, pickup_metres: float) -> str | None:
    """The reason the pair is forbidden by a hard rule, or None."""
    for o in unit.orders:
        if not o.requirements <= driver.features:
            return "vehicle lacks " + ", ".join(sorted(o.requirements - driver.features))
        if o.client_id is not None and (o.client_id, driver.id) in rules.excluded_drivers:
            return "driver excluded for this client"
        if rules.zones.mode == "hard" and driver.zones and o.zone not in driver.zones:
            return "outside the driver's zones"
        hv = rules.high_value
        high = hv.threshold_minor is not None and o.value_minor >= hv.threshold_minor
        if high and hv.min_score is not None and driver.score < hv.min_score:
            return "score below the minimum for high-value orders"
    if rules.max_pickup_distance_m is not None and pickup_metres > rules.max_pickup_distance_m:
        return "pickup too far"
    return None


def _soft_terms(driver: Driver, unit: _Unit, rules: Rules) -> tuple[float, float, float, float]:
    hv = rules.high_value
    high = hv.threshold_minor is not None and any(o.value_minor >= hv.threshold_minor for o in unit.orders)
    score_s = hv.score_weight_s * (1.0 - min(1.0, max(0.0, driver.score))) if high else 0.0
    zone_s = (
        -rules.zones.bonus_s
        if rules.zones.mode == "bonus" and driver.zones and any(o.zone in driver.zones for o in unit.orders)
        else 0.0
    )
    priority_s = -rules.priority_bonus_s * max(o.priority for o in unit.orders) + 0.0
    owned_s = -rules.owned_fleet_first.bonus_s if rules.owned_fleet_first.enabled and driver.owned else 0.0
    return score_s, zone_s, priority_s, owned_s


def _pair(
    driver: Driver,
    unit: _Unit,
    rules: Rules,
    travel: TravelTimes,
    now_s: float,
    fastest: float,
    metres: float,
):
    """(Assignment, None) for a feasible pair, (None, reason) otherwise."""
    reason = _hard_ok(driver, unit, rules, metres)
    if reason:
        return None, reason
    w = rules.weights
    plan = best_insertion(
        driver,
        unit.orders,
        travel,
        forbid_late=rules.lateness.mode == "forbid",
        max_batch_size=rules.batching.max_batch_size if rules.batching.enabled else len(unit.orders),
        w_delivery=w.delivery_delay,
        w_others=w.delay_to_others,
        w_route=w.added_route,
        late_penalty=rules.lateness.penalty_per_s,
    )
    if plan is None:
        return None, "no feasible place in the driver's plan (capacity, time windows, shift or batch size)"
    delivery_delay = float(sum(plan.dropoff_at_s.values()) - fastest)
    score_s, zone_s, priority_s, owned_s = _soft_terms(driver, unit, rules)
    total = (
        w.delivery_delay * delivery_delay
        + w.delay_to_others * plan.delay_to_others_s
        + rules.lateness.penalty_per_s * plan.late_added_s
        + w.added_route * plan.added_route_s
        + score_s
        + zone_s
        + priority_s
        + owned_s
    )
    terms = CostTerms(
        travel_to_pickup_s=plan.travel_to_pickup_s,
        wait_at_pickup_s=plan.wait_at_pickup_s,
        delivery_delay_s=delivery_delay,
        delay_to_others_s=plan.delay_to_others_s,
        late_s=plan.late_added_s,
        added_route_s=plan.added_route_s,
        score_s=score_s,
        zone_s=zone_s,
        priority_s=priority_s,
        owned_fleet_s=owned_s,
        total=float(total),
    )
    return (
        RoundAssignment(
            driver.id,
            tuple(o.id for o in unit.orders),
            plan.route,
            terms,
            plan.pickup_at_s,
            plan.dropoff_at_s,
        ),
        None,
    )


def _simple(rules: Rules) -> bool:
    """Whether pairs of idle drivers and single orders can be costed in bulk (no per-pair rule)."""
    return not rules.excluded_drivers and rules.zones.mode != "hard" and rules.high_value.min_score is None


def _bulk_pairs(drivers, units, d_idx, u_idx, rules, travel, fastest, metres):
    """Vectorised costs for (idle driver, single order) pairs: (total, feasible, pieces)."""
    orders = [units[u].head for u in u_idx]
    drv = [drivers[d] for d in d_idx]
    f = np.array
    avail = f([d.available_at_s for d in drv])
    tt = _pairs_s(
        travel,
        [d.lat for d in drv],
        [d.lon for d in drv],
        [o.pickup_lat for o in orders],
        [o.pickup_lon for o in orders],
    )
    arrive = avail + tt
    begin_p = np.maximum(arrive, f([o.pickup_open_s for o in orders]))
    leg = f([fastest[u][1] for u in u_idx])
    arr_d = begin_p + f([o.pickup_service_s for o in orders]) + leg
    begin_d = np.maximum(arr_d, f([o.dropoff_open_s for o in orders]))
    late = np.maximum(0.0, begin_d - f([o.dropoff_close_s for o in orders]))
    ok = (begin_p <= f([o.pickup_close_s for o in orders])) & (begin_p <= f([d.shift_end_s for d in drv]))
    ok &= f([o.weight_kg for o in orders]) <= f([d.capacity_kg - d.load_kg for d in drv]) + 1e-9
    ok &= f([o.volume_l for o in orders]) <= f([d.capacity_l - d.load_l for d in drv]) + 1e-9
    if any(o.requirements for o in orders):
        ok &= f([o.requirements <= d.features for o, d in zip(orders, drv, strict=True)], dtype=bool)
    if rules.lateness.mode == "forbid":
        ok &= late <= 0
    if rules.max_pickup_distance_m is not None:
        ok &= metres <= rules.max_pickup_distance_m
    delivery_delay = begin_d - f([fastest[u][0] for u in u_idx])
    added = begin_d + f([o.dropoff_service_s for o in orders]) - avail
    w = rules.weights
    total = w.delivery_delay * delivery_delay + rules.lateness.penalty_per_s * late + w.added_route * added
    soft = np.zeros((len(drv), 4))
    if (
        rules.high_value.threshold_minor is not None
        or rules.zones.mode == "bonus"
        or rules.owned_fleet_first.enabled
    ):
        soft = np.array(
            [_soft_terms(drivers[d], units[u], rules) for d, u in zip(d_idx, u_idx, strict=True)]
        ).reshape(-1, 4)
    else:
        soft[:, 2] = [-rules.priority_bonus_s * o.priority for o in orders]
    total = total + soft.sum(axis=1)
    return total, ok, (tt, begin_p - arrive, delivery_delay, late, added, soft, begin_p, begin_d)


class RoundAssignment(NamedTuple):
    """One driver takes one unit (an order, or orders bundled at one pickup), with its reasons."""

    driver_id: Hashable
    order_ids: tuple
    route: tuple
    terms: CostTerms
    pickup_at_s: float
    dropoff_at_s: dict

    @property
    def cost(self) -> float:
        return self.terms.total


def solve_round(
    drivers: Sequence[Driver],
    orders: Sequence[Order],
    *,
    now_s: float,
    travel: TravelTimes,
    rules: Rules | None = None,
    k_nearest: int | None = None,
    second_pass: bool = True,
) -> RoundResult:
    """Assign open orders to drivers for one round: minimum total cost, each order at most once,
    each driver at most one new unit; an order whose every option costs more than leaving it open
    (`rules.unassigned_penalty_s`) or that has no feasible driver stays unassigned, with a reason.

    Candidates per unit: the `k_nearest` (default `rules.k_nearest`; 0 = all) feasible drivers
    among the 3k nearest by great-circle distance (all drivers if none of those is feasible);
    solved exactly on that sparse graph with a dummy "unassigned" column per unit.
    """
    rules = rules or Rules()
    k = rules.k_nearest if k_nearest is None else k_nearest
    usable = [
        d
        for d in drivers
        if d.status in ("available", "busy")
        and (rules.batching.enabled or not d.route)
        and d.available_at_s <= d.shift_end_s
    ]
    if not orders:
        return RoundResult([], {})
    if not usable:
        return RoundResult([], {o.id: "no driver available" for o in orders})
    n_free = sum(1 for d in usable if not d.route)
    units = _form_units(orders, n_free, rules, travel, now_s)
    n_d, n_u = len(usable), len(units)
    pick = np.array([[u.head.pickup_lat, u.head.pickup_lon] for u in units])
    dpos = np.array([[d.lat, d.lon] for d in usable])
    legs = [
        float(x)
        for x in _pairs_s(
            travel,
            pick[:, 0],
            pick[:, 1],
            [u.head.dropoff_lat for u in units],
            [u.head.dropoff_lon for u in units],
        )
    ]
    fastest = []
    for u, unit in enumerate(units):
        if len(unit.orders) == 1:
            o = unit.head
            fastest.append(
                (max(max(now_s, o.pickup_open_s) + o.pickup_service_s + legs[u], o.dropoff_open_s), legs[u])
            )
        else:
            fastest.append((sum(fastest_dropoff_s(o, travel, now_s) for o in unit.orders), float(legs[u])))
    if k <= 0 or k >= n_d:
        geo = np.broadcast_to(np.arange(n_d), (n_u, n_d))
    else:
        from scipy.spatial import cKDTree

        tree = cKDTree(_unit_sphere(dpos[:, 0], dpos[:, 1]))
        _, geo = tree.query(_unit_sphere(pick[:, 0], pick[:, 1]), k=min(n_d, 3 * k))
        geo = np.asarray(geo).reshape(n_u, -1)
    edges: dict[tuple[int, int], float] = {}
    reasons: dict[int, str] = {}
    bulk_ok = _simple(rules)
    idle = np.array([not d.route for d in usable])

    def cost_rows(u_rows: np.ndarray, d_rows: np.ndarray) -> list[tuple[int, int, float]]:
        out = []
        metres = haversine_pairs_m(dpos[d_rows, 0], dpos[d_rows, 1], pick[u_rows, 0], pick[u_rows, 1])
        single = np.array([len(units[u].orders) == 1 for u in u_rows], dtype=bool)
        fast = (idle[d_rows] & single) if bulk_ok else np.zeros(len(u_rows), dtype=bool)
        if fast.any():
            total, ok, _ = _bulk_pairs(
                usable, units, d_rows[fast], u_rows[fast], rules, travel, fastest, metres[fast]
            )
            for d, u, t in zip(d_rows[fast][ok], u_rows[fast][ok], total[ok], strict=True):
                out.append((int(u), int(d), float(t)))
        for d, u, m in zip(d_rows[~fast], u_rows[~fast], metres[~fast], strict=True):
            result, why = _pair(usable[d], units[u], rules, travel, now_s, fastest[u][0], float(m))
            if result is None:
                reasons.setdefault(int(u), why)
            else:
                out.append((int(u), int(d), result.terms.total))
        return out

    u_rows = np.repeat(np.arange(n_u), geo.shape[1])
    found = cost_rows(u_rows, geo.reshape(-1))
    per_unit: dict[int, list[tuple[float, int]]] = {}
    for u, d, t in found:
        per_unit.setdefault(u, []).append((t, d))
    if geo.shape[1] < n_d:
        missing = [u for u in range(n_u) if u not in per_unit]
        for u in missing:  # nobody feasible among the nearest: look at every driver
            rest = np.setdiff1d(np.arange(n_d), geo[u])
            for uu, d, t in cost_rows(np.full(rest.size, u), rest):
                per_unit.setdefault(uu, []).append((t, d))
    for u, options in per_unit.items():
        options.sort()
        for t, d in options[: k if k > 0 else None]:
            edges[(u, d)] = t
    penalties = np.array([rules.unassigned_penalty_s * len(unit.orders) for unit in units])
    chosen = _min_cost_matching(n_u, n_d, edges, penalties)
    assignments, unassigned = [], {}
    for u, unit in enumerate(units):
        d = chosen.get(u)
        if d is None:
            if u in per_unit:
                best = min(t for t, _ in per_unit[u])
                why = (
                    "every option costs more than leaving it open"
                    if best >= penalties[u]
                    else "its drivers went to orders where they saved more"
                )
            else:
                why = reasons.get(u)
                if why is None:  # costed in bulk: ask the nearest driver why not
                    d0 = int(geo[u][0])
                    m0 = haversine_m(
                        usable[d0].lat, usable[d0].lon, unit.head.pickup_lat, unit.head.pickup_lon
                    )
                    why = (
                        _pair(usable[d0], unit, rules, travel, now_s, fastest[u][0], m0)[1]
                        or "no feasible driver"
                    )
            for o in unit.orders:
                unassigned[o.id] = why
            continue
        metres = haversine_m(usable[d].lat, usable[d].lon, unit.head.pickup_lat, unit.head.pickup_lon)
        result, _ = _pair(usable[d], unit, rules, travel, now_s, fastest[u][0], metres)
        assignments.append(result)
    lost = [o for o in orders if unassigned.get(o.id) == "its drivers went to orders where they saved more"]
    if lost and second_pass and 0 < k < n_d:
        # The sparse graph can strand an order whose few candidates all went elsewhere: give the
        # stranded orders one more round against the drivers still free.
        taken = {a.driver_id for a in assignments}
        more = solve_round(
            [d for d in usable if d.id not in taken],
            lost,
            now_s=now_s,
            travel=travel,
            rules=rules,
            k_nearest=k,
            second_pass=False,
        )
        assignments.extend(more.assignments)
        for a in more.assignments:
            for oid in a.order_ids:
                unassigned.pop(oid, None)
    position = {o.id: i for i, o in enumerate(orders)}
    assignments.sort(key=lambda a: position[a.order_ids[0]])
    return RoundResult(assignments, unassigned)


def _min_cost_matching(
    n_rows: int, n_cols: int, edges: dict[tuple[int, int], float], penalties: np.ndarray
) -> dict[int, int]:
    """Rows (units) to columns (drivers) at least cost; each row may take its own dummy column at
    its penalty instead. Exact on the given sparse graph (LAPJVsp)."""
    if not edges:
        return {}
    rows = np.fromiter((u for u, _ in edges), dtype=np.int64, count=len(edges))
    cols = np.fromiter((d for _, d in edges), dtype=np.int64, count=len(edges))
    vals = np.fromiter(edges.values(), dtype=float, count=len(edges))
    keep = vals < penalties[rows]  # an option dearer than staying open can never be chosen
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if rows.size == 0:
        return {}
    all_rows = np.concatenate([rows, np.arange(n_rows)])
    all_cols = np.concatenate([cols, n_cols + np.arange(n_rows)])
    all_vals = np.concatenate([vals, penalties])
    all_vals = all_vals - all_vals.min() + 1.0  # strictly positive: stored zeros are not edges
    graph = csr_matrix((all_vals, (all_rows, all_cols)), shape=(n_rows, n_cols + n_rows))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    return {int(r): int(c) for r, c in zip(row_ind, col_ind, strict=True) if c < n_cols}
