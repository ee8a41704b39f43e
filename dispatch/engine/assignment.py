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
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from dispatch.engine import model
from dispatch.engine.batching import best_insertion, bundle_same_pickup, fastest_dropoff_s, orders_in
from dispatch.engine.geo import haversine_m, haversine_matrix_m, haversine_pairs_m, unit_sphere
from dispatch.engine.model import CostTerms, Driver, Order, RoundResult
from dispatch.engine.rules import Rules
from dispatch.engine.travel import TravelTimes, pairs_s


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


class _Unit(NamedTuple):
    orders: tuple[Order, ...]

    @property
    def head(self) -> Order:
        return self.orders[0]


def _form_units(
    orders: Sequence[Order],
    n_free: int,
    rules: Rules,
    travel: TravelTimes,
    now_s: float,
    vehicle_types: Sequence[str],
) -> list[_Unit]:
    """Orders become units of work; same-pickup orders are bundled when drivers are scarce and
    a driver (of one of `vehicle_types`) at the pickup could still keep every promise of the bundle."""
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
            plan = min(
                (
                    best_insertion(
                        replace(phantom, vehicle_type=vehicle_type),
                        group,
                        travel,
                        forbid_late=True,
                        max_batch_size=len(group),
                    )
                    for vehicle_type in vehicle_types
                ),
                key=lambda p: math.inf if p is None else p.objective,
            )
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


NO_PLACE = "no feasible place in the driver's plan (capacity, time windows, shift or batch size)"


def _insertion(driver: Driver, orders: Sequence[Order], rules: Rules, travel: TravelTimes):
    """The cheapest feasible plan adding `orders` to the driver's, under the rules; or None."""
    w = rules.weights
    return best_insertion(
        driver,
        orders,
        travel,
        forbid_late=rules.lateness.mode == "forbid",
        max_batch_size=rules.batching.max_batch_size if rules.batching.enabled else len(orders),
        w_delivery=w.delivery_delay,
        w_others=w.delay_to_others,
        w_route=w.added_route,
        late_penalty=rules.lateness.penalty_per_s,
    )


def can_still_take(
    driver: Driver, orders: Sequence[Order], *, travel: TravelTimes, rules: Rules
) -> str | None:
    """Why the driver can no longer add these orders to their current plan (capacity, pickup
    windows, shift, batch size; lateness when the rules forbid it), or None if they can: the
    check an offer's acceptance makes against the plan as it is by then."""
    return None if _insertion(driver, orders, rules, travel) is not None else NO_PLACE


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
    plan = _insertion(driver, unit.orders, rules, travel)
    if plan is None:
        return None, NO_PLACE
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
        model.Assignment(
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


class _Bulk:
    """Vectorised costing of (idle driver, single order) pairs from per-driver/per-unit arrays."""

    def __init__(
        self,
        drivers: Sequence[Driver],
        units: Sequence[_Unit],
        rules: Rules,
        fastest,
        legs: dict[str, np.ndarray],
        now_s: float,
    ):
        f = np.array
        heads = [u.head for u in units]
        self.drivers, self.units, self.rules, self.now_s = drivers, units, rules, now_s
        types = list(legs)
        self.vehicle = f([d.vehicle_type for d in drivers], dtype=object)
        self.type_row = f([types.index(d.vehicle_type) for d in drivers], dtype=np.int64)
        self.legs = np.array([legs[t] for t in types], dtype=float).reshape(len(types), len(units))
        self.d_lat, self.d_lon = f([d.lat for d in drivers]), f([d.lon for d in drivers])
        self.avail = f([d.available_at_s for d in drivers], dtype=float)
        self.shift_end = f([d.shift_end_s for d in drivers], dtype=float)
        self.room_kg = f([d.capacity_kg - d.load_kg for d in drivers], dtype=float) + 1e-9
        self.room_l = f([d.capacity_l - d.load_l for d in drivers], dtype=float) + 1e-9
        self.p_lat, self.p_lon = f([o.pickup_lat for o in heads]), f([o.pickup_lon for o in heads])
        self.p_open = f([o.pickup_open_s for o in heads], dtype=float)
        self.p_close = f([o.pickup_close_s for o in heads], dtype=float)
        self.p_svc = f([o.pickup_service_s for o in heads], dtype=float)
        self.d_open = f([o.dropoff_open_s for o in heads], dtype=float)
        self.d_close = f([o.dropoff_close_s for o in heads], dtype=float)
        self.d_svc = f([o.dropoff_service_s for o in heads], dtype=float)
        self.kg, self.litres = (
            f([o.weight_kg for o in heads], dtype=float),
            f([o.volume_l for o in heads], dtype=float),
        )
        self.fastest = f(fastest, dtype=float)
        self.needs = any(o.requirements for o in heads)
        self.priority = f([-rules.priority_bonus_s * max(o.priority for o in u.orders) + 0.0 for u in units])
        hv = rules.high_value
        self.high = f(
            [
                hv.threshold_minor is not None and any(o.value_minor >= hv.threshold_minor for o in u.orders)
                for u in units
            ],
            dtype=bool,
        )
        self.score_pen = hv.score_weight_s * (
            1.0 - np.clip(f([d.score for d in drivers], dtype=float), 0.0, 1.0)
        )
        owned = f([d.owned for d in drivers], dtype=bool)
        self.owned = np.where(owned & rules.owned_fleet_first.enabled, -rules.owned_fleet_first.bonus_s, 0.0)
        self.zoned = (
            rules.zones.mode == "bonus"
            and any(d.zones for d in drivers)
            and any(o.zone is not None for o in heads)
        )

    def costs(self, d: np.ndarray, u: np.ndarray, travel: TravelTimes, metres: np.ndarray):
        rules = self.rules
        avail = self.avail[d]
        tt = pairs_s(
            travel,
            self.d_lat[d],
            self.d_lon[d],
            self.p_lat[u],
            self.p_lon[u],
            depart_at=self.now_s,
            vehicle_types=self.vehicle[d],
        )
        arrive = avail + tt
        begin_p = np.maximum(arrive, self.p_open[u])
        begin_d = np.maximum(begin_p + self.p_svc[u] + self.legs[self.type_row[d], u], self.d_open[u])
        late = np.maximum(0.0, begin_d - self.d_close[u])
        ok = (begin_p <= self.p_close[u]) & (begin_p <= self.shift_end[d])
        ok &= (self.kg[u] <= self.room_kg[d]) & (self.litres[u] <= self.room_l[d])
        if self.needs:
            ok &= np.array(
                [
                    self.units[j].head.requirements <= self.drivers[i].features
                    for i, j in zip(d, u, strict=True)
                ],
                dtype=bool,
            )
        if rules.lateness.mode == "forbid":
            ok &= late <= 0
        if rules.max_pickup_distance_m is not None:
            ok &= metres <= rules.max_pickup_distance_m
        delay = begin_d - self.fastest[u]
        added = begin_d + self.d_svc[u] - avail
        score = np.where(self.high[u], self.score_pen[d], 0.0)
        zone = np.zeros(d.size)
        if self.zoned:
            zone = np.array(
                [
                    -rules.zones.bonus_s
                    if self.drivers[i].zones and self.units[j].head.zone in self.drivers[i].zones
                    else 0.0
                    for i, j in zip(d, u, strict=True)
                ]
            )
        w = rules.weights
        total = (
            w.delivery_delay * delay
            + rules.lateness.penalty_per_s * late
            + w.added_route * added
            + score
            + zone
            + self.priority[u]
            + self.owned[d]
        )
        return total, ok, (tt, begin_p - arrive, delay, late, added, score, zone, begin_p, begin_d)

    def assignments(self, d: np.ndarray, u: np.ndarray, travel: TravelTimes, metres: np.ndarray):
        """The explained assignments for matched (idle driver, single order) pairs."""
        total, _, pieces = self.costs(d, u, travel, metres)
        columns = [x.tolist() for x in pieces]
        prio, owned = self.priority[u].tolist(), self.owned[d].tolist()
        out = []
        for i, (di, ui, t) in enumerate(zip(d.tolist(), u.tolist(), total.tolist(), strict=True)):
            tt, wait, delay, late, added, score, zone, begin_p, begin_d = (c[i] for c in columns)
            order = self.units[ui].head
            terms = CostTerms(tt, wait, delay, 0.0, late, added, score, zone, prio[i], owned[i], t)
            out.append(
                model.Assignment(
                    self.drivers[di].id, (order.id,), order.stops(), terms, begin_p, {order.id: begin_d}
                )
            )
        return out


def _legs_and_fastest(units, pick: np.ndarray, travel: TravelTimes, now_s: float, vehicle_types):
    """Each unit's pickup -> drop-off seconds per vehicle type of the round (one call per type),
    and the earliest its orders could be dropped off (by the quickest type; fastest_dropoff_s)."""
    legs_by_type = {
        vehicle_type: pairs_s(
            travel,
            pick[:, 0],
            pick[:, 1],
            [u.head.dropoff_lat for u in units],
            [u.head.dropoff_lon for u in units],
            depart_at=now_s,
            vehicle_types=vehicle_type,
        )
        for vehicle_type in vehicle_types
    }
    legs = np.min(np.array(list(legs_by_type.values())), axis=0).tolist()
    fastest = []
    for u, unit in enumerate(units):
        if len(unit.orders) == 1:
            o = unit.head
            earliest = max(max(now_s, o.pickup_open_s) + o.pickup_service_s + legs[u], o.dropoff_open_s)
        else:
            earliest = sum(fastest_dropoff_s(o, travel, now_s, vehicle_types) for o in unit.orders)
        fastest.append(earliest)
    return legs_by_type, fastest


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
    usable = _usable(drivers, rules)
    if not orders:
        return RoundResult([], {})
    if not usable:
        return RoundResult([], {o.id: "no driver available" for o in orders})
    if second_pass and k > 0 and len(orders) > TILE_ORDERS and len(usable) > k:
        return _solve_tiled(usable, orders, now_s=now_s, travel=travel, rules=rules, k=k)
    n_free = sum(1 for d in usable if not d.route)
    vehicle_types = sorted({d.vehicle_type for d in usable})
    units = _form_units(orders, n_free, rules, travel, now_s, vehicle_types)
    n_d, n_u = len(usable), len(units)
    pick = np.array([[u.head.pickup_lat, u.head.pickup_lon] for u in units])
    dpos = np.array([[d.lat, d.lon] for d in usable])
    legs_by_type, fastest = _legs_and_fastest(units, pick, travel, now_s, vehicle_types)
    if k <= 0 or k >= n_d:
        geo = np.broadcast_to(np.arange(n_d), (n_u, n_d))
    else:
        tree = cKDTree(unit_sphere(dpos[:, 0], dpos[:, 1]))
        _, geo = tree.query(unit_sphere(pick[:, 0], pick[:, 1]), k=min(n_d, 3 * k))
        geo = np.asarray(geo).reshape(n_u, -1)
    reasons: dict[int, str] = {}
    bulk = _Bulk(usable, units, rules, fastest, legs_by_type, now_s)
    bulk_ok = _simple(rules)
    idle = np.array([not d.route for d in usable], dtype=bool)
    single = np.array([len(u.orders) == 1 for u in units], dtype=bool)

    def cost_rows(u_rows: np.ndarray, d_rows: np.ndarray):
        """Feasible candidate pairs as arrays (unit, driver, cost)."""
        metres = haversine_pairs_m(dpos[d_rows, 0], dpos[d_rows, 1], pick[u_rows, 0], pick[u_rows, 1])
        fast = (idle[d_rows] & single[u_rows]) if bulk_ok else np.zeros(u_rows.size, dtype=bool)
        us, ds, ts = [], [], []
        if fast.any():
            total, ok, _ = bulk.costs(d_rows[fast], u_rows[fast], travel, metres[fast])
            us.append(u_rows[fast][ok])
            ds.append(d_rows[fast][ok])
            ts.append(total[ok])
        slow_u, slow_d, slow_t = [], [], []
        for d, u, m in zip(
            d_rows[~fast].tolist(), u_rows[~fast].tolist(), metres[~fast].tolist(), strict=True
        ):
            result, why = _pair(usable[d], units[u], rules, travel, now_s, fastest[u], m)
            if result is None:
                reasons.setdefault(u, why)
            else:
                slow_u.append(u)
                slow_d.append(d)
                slow_t.append(result.terms.total)
        us.append(np.array(slow_u, dtype=np.int64))
        ds.append(np.array(slow_d, dtype=np.int64))
        ts.append(np.array(slow_t, dtype=float))
        return np.concatenate(us).astype(np.int64), np.concatenate(ds).astype(np.int64), np.concatenate(ts)

    cu, cd, ct = cost_rows(np.repeat(np.arange(n_u), geo.shape[1]), geo.reshape(-1))
    if geo.shape[1] < n_d:
        has = np.zeros(n_u, dtype=bool)
        has[cu] = True
        for u in np.flatnonzero(~has):  # nobody feasible among the nearest: look at every driver
            rest = np.setdiff1d(np.arange(n_d), geo[u])
            more = cost_rows(np.full(rest.size, u), rest)
            cu, cd, ct = (np.concatenate([a, b]) for a, b in zip((cu, cd, ct), more, strict=True))
    # Keep each unit's k cheapest options.
    order_by = np.lexsort((ct, cu))
    cu, cd, ct = cu[order_by], cd[order_by], ct[order_by]
    if k > 0 and cu.size:
        starts = np.searchsorted(cu, cu, side="left")
        keep = (np.arange(cu.size) - starts) < k
        cu, cd, ct = cu[keep], cd[keep], ct[keep]
    best = np.full(n_u, np.inf)
    np.minimum.at(best, cu, ct)
    penalties = np.array([rules.unassigned_penalty_s * len(unit.orders) for unit in units])
    chosen = _min_cost_matching(n_u, n_d, cu, cd, ct, penalties)
    assignments, unassigned = [], {}
    bulk_u, bulk_d = [], []
    for u, unit in enumerate(units):
        d = chosen.get(u)
        if d is None:
            if np.isfinite(best[u]):
                why = (
                    "every option costs more than leaving it open"
                    if best[u] >= penalties[u]
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
                        _pair(usable[d0], unit, rules, travel, now_s, fastest[u], m0)[1]
                        or "no feasible driver"
                    )
            for o in unit.orders:
                unassigned[o.id] = why
        elif bulk_ok and idle[d] and single[u]:
            bulk_u.append(u)
            bulk_d.append(d)
        else:
            metres = haversine_m(usable[d].lat, usable[d].lon, unit.head.pickup_lat, unit.head.pickup_lon)
            result, _ = _pair(usable[d], unit, rules, travel, now_s, fastest[u], metres)
            assignments.append(result)
    if bulk_u:
        bu, bd = np.array(bulk_u), np.array(bulk_d)
        metres = haversine_pairs_m(dpos[bd, 0], dpos[bd, 1], pick[bu, 0], pick[bu, 1])
        assignments.extend(bulk.assignments(bd, bu, travel, metres))
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


def _usable(drivers: Sequence[Driver], rules: Rules) -> list[Driver]:
    """Drivers who can take new work this round at all."""
    return [
        d
        for d in drivers
        if d.status in ("available", "busy")
        and (rules.batching.enabled or not d.route)
        and d.available_at_s <= d.shift_end_s
    ]


def eligible_pairs(
    drivers: Sequence[Driver],
    orders: Sequence[Order],
    *,
    now_s: float,
    travel: TravelTimes,
    rules: Rules | None = None,
) -> RoundResult:
    """The (driver, order) pairs a round offers when an order goes to all who can take it (the
    "broadcast" mode): the same hard rules and plan check as solve_round, each pair with its
    cost terms, none costing more than leaving the order open.

    Pruned twice: each order goes to its `rules.broadcast.max_drivers_per_order` nearest
    eligible drivers, and each driver gets no more pairs than they could take together (their
    free batch places and the room left in their vehicle; orders take turns, see
    _within_room). An
    order with no pair is unassigned with the first reason met. Pairs in the orders' order."""
    rules = rules or Rules()
    usable = _usable(drivers, rules)
    if not orders:
        return RoundResult([], {})
    if not usable:
        return RoundResult([], {o.id: "no driver available" for o in orders})
    k = rules.broadcast.max_drivers_per_order
    vehicle_types = sorted({d.vehicle_type for d in usable})
    dlat, dlon = np.array([d.lat for d in usable]), np.array([d.lon for d in usable])
    pick = np.array([[o.pickup_lat, o.pickup_lon] for o in orders])
    near = min(len(usable), 3 * k)
    _, nearest = cKDTree(unit_sphere(dlat, dlon)).query(unit_sphere(pick[:, 0], pick[:, 1]), k=near)
    nearest = np.asarray(nearest).reshape(len(orders), -1)
    units = [_Unit((o,)) for o in orders]
    legs_by_type, fastest = _legs_and_fastest(units, pick, travel, now_s, vehicle_types)
    bulk = _Bulk(usable, units, rules, fastest, legs_by_type, now_s) if _simple(rules) else None
    costed = _bulk_costed(bulk, usable, nearest, pick, travel)
    by_order: dict = {}
    unassigned: dict = {}
    for i, order in enumerate(orders):
        found, why = _nearest_eligible(
            usable, units[i], nearest[i], costed[i], k, rules, travel, now_s, fastest[i]
        )
        if found:
            by_order[order.id] = found
        else:
            unassigned[order.id] = why or "no feasible driver"
    kept = _within_room(by_order, usable, rules)
    # The pairs costed in bulk and kept become explained assignments together.
    position = {o.id: n for n, o in enumerate(orders)}
    in_bulk = [(order_id, n, o.pair) for order_id, opts in kept.items() for n, o in enumerate(opts)]
    in_bulk = [(order_id, n, d) for order_id, n, d in in_bulk if isinstance(d, int)]
    if in_bulk:
        u_rows = np.array([position[order_id] for order_id, _, _ in in_bulk])
        d_rows = np.array([d for _, _, d in in_bulk])
        metres = haversine_pairs_m(dlat[d_rows], dlon[d_rows], pick[u_rows, 0], pick[u_rows, 1])
        made = bulk.assignments(d_rows, u_rows, travel, metres)
        for (order_id, n, _), pair in zip(in_bulk, made, strict=True):
            kept[order_id][n] = kept[order_id][n]._replace(pair=pair)
    kept = {order_id: [o.pair for o in opts] for order_id, opts in kept.items()}
    for order in orders:
        if order.id not in unassigned and order.id not in kept:
            unassigned[order.id] = "its nearest drivers were offered as much work as they can take"
    assignments = sorted(
        (a for found in kept.values() for a in found), key=lambda a: position[a.order_ids[0]]
    )
    return RoundResult(assignments, unassigned)


class _Option(NamedTuple):
    """A pair send-to-all may offer: its cost, its driver and what it adds to their load;
    `pair` is its assignment, or the driver's row while it is to be made in bulk."""

    total: float
    driver_id: Hashable
    kg: float
    litres: float
    pair: object


def _load_added(route, order_ids) -> tuple[float, float]:
    """The kg and litres the route's pickups of these orders add."""
    picked = [s for s in route if s.kind == "pickup" and s.order_id in order_ids]
    return sum(s.weight_kg for s in picked), sum(s.volume_l for s in picked)


def _bulk_costed(bulk: "_Bulk | None", usable, nearest: np.ndarray, pick: np.ndarray, travel) -> np.ndarray:
    """Per order and nearest driver, what the bulk costing says of an idle driver (the pair's
    total, inf when infeasible); nan where the pair needs the per-pair path (a driver with a
    plan, or rules bulk costing cannot apply)."""
    out = np.full(nearest.shape, np.nan)
    if bulk is None:
        return out
    idle = np.array([not d.route for d in usable], dtype=bool)
    u_rows = np.repeat(np.arange(nearest.shape[0]), nearest.shape[1])
    d_rows = nearest.reshape(-1)
    fast = idle[d_rows]
    if fast.any():
        u, d = u_rows[fast], d_rows[fast]
        metres = haversine_pairs_m(bulk.d_lat[d], bulk.d_lon[d], pick[u, 0], pick[u, 1])
        total, ok, _ = bulk.costs(d, u, travel, metres)
        flat = out.reshape(-1)
        flat[fast] = np.where(ok, total, np.inf)
    return out


def _nearest_eligible(usable, unit, nearest, costed, k, rules, travel, now_s, fastest):
    """The order's k nearest eligible drivers, nearest first, and the first reason a nearer
    driver was not eligible. The 3k nearest are tried first; all drivers, by distance, only when
    fewer than k of those qualify. Each as an _Option; one costed in bulk (`costed`, see
    _bulk_costed) holds its driver's row, to be made an assignment in bulk if it is kept."""
    order = unit.head
    bulk_load = _load_added(order.stops(), {order.id})
    found, why = [], None
    pending_why = None  # a pair costed in bulk as infeasible: asked why only if the reason is needed

    def note(reason):
        """Keep the first reason met (a bulk-costed pair's as the pair, asked later if needed)."""
        nonlocal why, pending_why
        if why is None and pending_why is None:
            if isinstance(reason, str):
                why = reason
            else:
                pending_why = reason

    def walk(rows, totals):
        for d, cost in zip(rows, totals, strict=True):
            driver = usable[d]
            metres = haversine_m(driver.lat, driver.lon, order.pickup_lat, order.pickup_lon)
            if rules.max_pickup_distance_m is not None and metres > rules.max_pickup_distance_m:
                note("pickup too far")
                return True  # nearest first: every further driver is too far as well
            if np.isnan(cost):
                result, reason = _pair(driver, unit, rules, travel, now_s, fastest, metres)
                if result is not None:
                    cost = result.terms.total
                    result = _Option(cost, driver.id, *_load_added(result.route, result.order_ids), result)
                else:
                    cost = math.inf
            else:
                result, reason = _Option(cost, driver.id, *bulk_load, d), (d, metres)
            if not math.isfinite(cost):
                note(reason)
            elif cost >= rules.unassigned_penalty_s:
                note("every option costs more than leaving it open")
            else:
                found.append(result)
                if len(found) == k:
                    return True
        return False

    done = walk(nearest.tolist(), costed.tolist())
    if not done and len(nearest) < len(usable):
        tried = set(nearest.tolist())
        rest = [d for d in range(len(usable)) if d not in tried]
        metres = [haversine_m(usable[d].lat, usable[d].lon, order.pickup_lat, order.pickup_lon) for d in rest]
        walk([d for _, d in sorted(zip(metres, rest, strict=True))], [math.nan] * len(rest))
    if not found and pending_why is not None:
        d, metres = pending_why
        why = _pair(usable[d], unit, rules, travel, now_s, fastest, metres)[1]
    return found, why


def offer_room(driver: Driver, rules: Rules) -> tuple[int, float, float]:
    """How much more work a driver could take on: free batch places, and the kg and litres
    left when everything they hold is on board."""
    held = len(orders_in(driver.route))
    places = (rules.batching.max_batch_size if rules.batching.enabled else 1) - held
    picking = [s for s in driver.route if s.kind == "pickup"]
    room_kg = driver.capacity_kg - driver.load_kg - sum(s.weight_kg for s in picking)
    room_l = driver.capacity_l - driver.load_l - sum(s.volume_l for s in picking)
    return max(places, 0), room_kg, room_l


def _within_room(by_order: dict, usable, rules) -> dict:
    """Each order's options (_Option: its nearest eligible drivers) cut to what their drivers could take
    together (offer_room). Orders take turns, in the orders' order: each takes its cheapest
    pair whose driver still has room, then each its next one, and so on; so no order is left
    without a driver while others take a second. Returns order id -> the options kept."""
    room = {d.id: list(offer_room(d, rules)) for d in usable}
    queues = {order_id: sorted(options, key=lambda o: o.total) for order_id, options in by_order.items()}
    kept: dict = {}
    while queues:
        for order_id in list(queues):
            queue = queues[order_id]
            while queue and not _take_room(room, queue[0]):
                queue.pop(0)
            if queue:
                kept.setdefault(order_id, []).append(queue.pop(0))
            if not queue:
                del queues[order_id]
    return kept


def _take_room(room: dict, option: _Option) -> bool:
    """Whether the option's driver has room for it; if so, that room is taken."""
    places, room_kg, room_l = room[option.driver_id]
    if places < 1 or option.kg > room_kg + 1e-9 or option.litres > room_l + 1e-9:
        return False
    room[option.driver_id] = [places - 1, room_kg - option.kg, room_l - option.litres]
    return True


TILE_ORDERS = 1500  # larger sparse rounds are cut into geographic tiles of about this many orders


def _tiles(
    orders: list[Order], drivers: list[Driver], depth: int = 0
) -> list[tuple[list[Order], list[Driver]]]:
    """Cut the round in two at the median (alternating latitude and longitude) until each tile
    has at most TILE_ORDERS orders; each driver and order lands in exactly one tile."""
    if len(orders) <= TILE_ORDERS or not drivers:
        return [(orders, drivers)]
    axis = depth % 2
    cut = float(np.median([(o.pickup_lat, o.pickup_lon)[axis] for o in orders]))
    lo_o = [o for o in orders if (o.pickup_lat, o.pickup_lon)[axis] < cut]
    hi_o = [o for o in orders if (o.pickup_lat, o.pickup_lon)[axis] >= cut]
    if not lo_o or not hi_o:
        return [(orders, drivers)]
    lo_d = [d for d in drivers if (d.lat, d.lon)[axis] < cut]
    hi_d = [d for d in drivers if (d.lat, d.lon)[axis] >= cut]
    return _tiles(lo_o, lo_d, depth + 1) + _tiles(hi_o, hi_d, depth + 1)


def _solve_tiled(drivers, orders, *, now_s, travel, rules, k) -> RoundResult:
    """Each tile solved exactly on its sparse graph, then the orders left over (their drivers
    were across a border or taken) get one more round against all drivers still free."""
    assignments, unassigned = [], {}
    for tile_orders, tile_drivers in _tiles(list(orders), list(drivers)):
        if not tile_drivers:
            unassigned.update({o.id: "no driver available" for o in tile_orders})
            continue
        part = solve_round(
            tile_drivers, tile_orders, now_s=now_s, travel=travel, rules=rules, k_nearest=k, second_pass=False
        )
        assignments.extend(part.assignments)
        unassigned.update(part.unassigned)
    retry = [
        o
        for o in orders
        if o.id in unassigned and unassigned[o.id] != "every option costs more than leaving it open"
    ]
    taken = {a.driver_id for a in assignments}
    free = [d for d in drivers if d.id not in taken]
    if retry and free:
        more = solve_round(
            free, retry, now_s=now_s, travel=travel, rules=rules, k_nearest=k, second_pass=False
        )
        assignments.extend(more.assignments)
        for o in retry:
            unassigned.pop(o.id, None)
        unassigned.update(more.unassigned)
    position = {o.id: i for i, o in enumerate(orders)}
    assignments.sort(key=lambda a: position[a.order_ids[0]])
    return RoundResult(assignments, unassigned)


def _min_cost_matching(
    n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, penalties: np.ndarray
) -> dict[int, int]:
    """Rows (units) to columns (drivers) at least cost; each row may take its own dummy column at
    its penalty instead. Exact on the given sparse graph (LAPJVsp)."""
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
