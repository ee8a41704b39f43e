"""A digital twin: the dispatch engine on an order stream in simulated time.

Couriers follow their plans exactly (travel, wait for the window to open, serve); every
`round_s` seconds the policy assigns work:

- `greedy`: each ready order, oldest first, goes to the nearest courier who is free (on shift,
  nothing planned), one order per courier at a time;
- `optimal`: the engine (`solve_round`) with batching: orders whose food is ready within
  `assign_ahead_s`, all couriers on shift with their current plans; an assignment is final.

With `reposition`, every `reposition_every_s` idle couriers are moved toward forecast demand
(`reposition.propose_moves` on `forecast.forecast_slot`), the forecast trained only on the
orders placed before the simulated time (on a one-day instance: that day's earlier slots). A
moving courier is where the straight line puts them and can be given work on the way.

A courier is only re-planned from the stop they are heading to (no turning mid-leg).
Click-to-door runs from placement to arrival at the drop-off; an order not delivered by the end
counts as late. Pay per courier is max(pay per order x orders, guaranteed hourly x hours).
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from dispatch.engine.assignment import solve_round
from dispatch.engine.forecast import ForecastConfig, PastOrder, forecast_slot
from dispatch.engine.model import Driver, Order, Stop
from dispatch.engine.orders_csv import CourierRow, OrderRow
from dispatch.engine.reposition import IdleDriver, RepositionConfig, propose_moves, supply_by_cell
from dispatch.engine.rules import Rules
from dispatch.engine.travel import DEFAULT_VEHICLE, HaversineTravelTimes, TravelTimes, matrix_s

POLICIES = ("greedy", "optimal")


@dataclass(frozen=True)
class SimConfig:
    policy: str = "optimal"
    speed_mps: float = 5.33
    pickup_service_s: float = 240.0
    dropoff_service_s: float = 240.0
    target_s: float = 40 * 60.0
    round_s: float = 60.0
    pay_per_order_minor: int = 1000
    guaranteed_hourly_minor: int = 1500
    assign_ahead_s: float = 600.0  # optimal: consider orders whose food is ready within this
    drain_s: float = 6 * 3600.0  # keep running this long after the last shift ends
    rules: Rules = field(default_factory=Rules)
    reposition: bool = False
    reposition_every_s: float = 300.0
    reposition_min_shift_left_s: float = 1800.0  # a courier this close to shift end stays put
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    moves: RepositionConfig = field(default_factory=RepositionConfig)

    @property
    def label(self) -> str:
        return f"{self.policy}+reposition" if self.reposition else self.policy

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        for name in ("speed_mps", "round_s", "target_s", "reposition_every_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("pickup_service_s", "dropoff_service_s", "assign_ahead_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass
class _Courier:
    id: str
    lat: float
    lon: float
    start_s: float
    end_s: float
    free_at: float
    route: list = field(default_factory=list)  # [(Stop, begin_s, done_s)]
    delivered: int = 0
    vehicle_type: str = DEFAULT_VEHICLE
    move: tuple | None = None  # repositioning: (from_lat, from_lon, to_lat, to_lon, depart_s, arrive_s)
    moves: int = 0

    def advance_move(self, t: float) -> None:
        """Where a repositioning courier is at t (straight line, constant speed)."""
        if self.move is None:
            return
        from_lat, from_lon, to_lat, to_lon, depart, arrive = self.move
        share = 1.0 if arrive <= depart else min(1.0, max(0.0, (t - depart) / (arrive - depart)))
        self.lat = from_lat + (to_lat - from_lat) * share
        self.lon = from_lon + (to_lon - from_lon) * share
        self.free_at = max(self.free_at, min(t, arrive))
        if share >= 1.0:
            self.move = None


@dataclass
class _Outcome:
    placed_s: float
    ready_s: float
    assigned: bool = False
    pickup_s: float | None = None
    dropoff_s: float | None = None


def _plan(
    courier: _Courier, stops: Sequence[Stop], travel: TravelTimes, lat: float, lon: float, t: float
) -> list:
    """Times for `stops` walked from (lat, lon) free at t."""
    out = []
    for stop in stops:
        leg = matrix_s(
            travel, [(lat, lon)], [(stop.lat, stop.lon)], depart_at=t, vehicle_type=courier.vehicle_type
        )
        t += float(leg[0, 0])
        begin = max(t, stop.open_s)
        t = begin + stop.service_s
        out.append((stop, begin, t))
        lat, lon = stop.lat, stop.lon
    return out


def simulate(
    orders: Sequence[OrderRow],
    couriers: Sequence[CourierRow],
    config: SimConfig,
    travel: TravelTimes | None = None,
) -> dict:
    """Run the day; the metrics as a JSON-ready dict."""
    started = time.perf_counter()
    travel = travel or HaversineTravelTimes(config.speed_mps)
    times = [o.placed_at for o in orders] + [c.start_at for c in couriers]
    if not times:
        raise ValueError("nothing to simulate")
    epoch: datetime = min(times)

    def sec(value: datetime) -> float:
        return (value - epoch).total_seconds()

    engine_orders: dict[str, Order] = {}
    outcomes: dict[str, _Outcome] = {}
    for o in orders:
        placed, ready = sec(o.placed_at), sec(o.ready_at)
        engine_orders[o.order_id] = Order(
            o.order_id,
            o.pickup_lat,
            o.pickup_lon,
            o.dropoff_lat,
            o.dropoff_lon,
            pickup_open_s=ready,
            dropoff_close_s=placed + config.target_s,
            pickup_service_s=config.pickup_service_s,
            dropoff_service_s=config.dropoff_service_s,
            weight_kg=o.weight_kg,
            volume_l=o.volume_l,
            value_minor=o.value,
            pickup_id=(round(o.pickup_lat, 5), round(o.pickup_lon, 5)),
        )
        outcomes[o.order_id] = _Outcome(placed, ready)
    fleet = [
        _Courier(
            c.courier_id,
            c.lat,
            c.lon,
            sec(c.start_at),
            sec(c.end_at),
            sec(c.start_at),
            vehicle_type=c.vehicle_type or DEFAULT_VEHICLE,
        )
        for c in couriers
    ]
    by_placement = sorted(engine_orders.values(), key=lambda o: (outcomes[o.id].placed_s, str(o.id)))
    last_shift = max((c.end_s for c in fleet), default=0.0)
    horizon = max(last_shift, max((oc.placed_s for oc in outcomes.values()), default=0.0)) + config.drain_s
    open_ids: list[str] = []
    next_order = 0
    next_reposition = 0.0
    t = 0.0
    while t <= horizon:
        # Move everyone to t.
        for c in fleet:
            c.advance_move(t)
            while c.route and c.route[0][2] <= t:
                stop, begin, done = c.route.pop(0)
                outcome = outcomes[stop.order_id]
                if stop.kind == "pickup":
                    outcome.pickup_s = begin
                else:
                    outcome.dropoff_s = begin
                    c.delivered += 1
                c.lat, c.lon, c.free_at = stop.lat, stop.lon, done
        while next_order < len(by_placement) and outcomes[by_placement[next_order].id].placed_s <= t:
            open_ids.append(by_placement[next_order].id)
            next_order += 1
        on_shift = [c for c in fleet if c.start_s <= t < c.end_s]
        if open_ids and on_shift:
            if config.policy == "greedy":
                _greedy_round(t, open_ids, on_shift, engine_orders, outcomes, travel)
            else:
                _optimal_round(t, open_ids, on_shift, engine_orders, outcomes, travel, config)
            open_ids = [i for i in open_ids if not outcomes[i].assigned]
            for c in on_shift:
                if c.route:
                    c.move = None  # given work on the way: the plan starts where they are
        if config.reposition and on_shift and t >= next_reposition:
            next_reposition = t + config.reposition_every_s
            history = [
                PastOrder(o.pickup_lat, o.pickup_lon, epoch.timestamp() + outcomes[o.id].placed_s)
                for o in by_placement[:next_order]
            ]
            _reposition_round(t, epoch.timestamp(), history, on_shift, travel, config)
        if (
            next_order >= len(by_placement)
            and all(not c.route for c in fleet)
            and (not open_ids or t >= last_shift)
        ):
            break
        t += config.round_s
    return _metrics(outcomes, fleet, config, time.perf_counter() - started)


def _greedy_round(t, open_ids, couriers, orders, outcomes, travel) -> None:
    free = [c for c in couriers if not c.route]
    ready = sorted(
        (i for i in open_ids if outcomes[i].ready_s <= t), key=lambda i: (outcomes[i].ready_s, str(i))
    )
    for oid in ready:
        if not free:
            return
        o = orders[oid]
        seconds = np.empty(len(free))
        for vehicle_type in {c.vehicle_type for c in free}:
            rows = [k for k, c in enumerate(free) if c.vehicle_type == vehicle_type]
            seconds[rows] = matrix_s(
                travel,
                [(free[k].lat, free[k].lon) for k in rows],
                [(o.pickup_lat, o.pickup_lon)],
                depart_at=t,
                vehicle_type=vehicle_type,
            )[:, 0]
        best = int(np.argmin(seconds))
        c = free.pop(best)
        c.free_at = max(c.free_at, t)
        c.route = _plan(c, o.stops(), travel, c.lat, c.lon, c.free_at)
        outcomes[oid].assigned = True


def _optimal_round(t, open_ids, couriers, orders, outcomes, travel, config) -> None:
    candidates = [orders[i] for i in open_ids if outcomes[i].ready_s - t <= config.assign_ahead_s]
    if not candidates:
        return
    drivers = []
    for c in couriers:
        if c.route:
            head, _, done = c.route[0]
            rest = tuple(s for s, _, _ in c.route[1:])
            # On board after the head stop: orders dropped off later but not picked up later.
            picked_later = {s.order_id for s in rest if s.kind == "pickup"}
            on_board = [s for s in rest if s.kind == "dropoff" and s.order_id not in picked_later]
            drivers.append(
                Driver(
                    c.id,
                    head.lat,
                    head.lon,
                    math.inf,
                    vehicle_type=c.vehicle_type,
                    available_at_s=done,
                    shift_end_s=c.end_s,
                    route=rest,
                    load_kg=-sum(s.weight_kg for s in on_board),
                    load_l=-sum(s.volume_l for s in on_board),
                )
            )
        else:
            drivers.append(
                Driver(
                    c.id,
                    c.lat,
                    c.lon,
                    math.inf,
                    vehicle_type=c.vehicle_type,
                    available_at_s=max(c.free_at, t),
                    shift_end_s=c.end_s,
                )
            )
    by_id = {c.id: c for c in couriers}
    result = solve_round(drivers, candidates, now_s=t, travel=travel, rules=config.rules)
    for a in result.assignments:
        c = by_id[a.driver_id]
        if c.route:
            head = c.route[0]
            c.route = [head, *_plan(c, a.route, travel, head[0].lat, head[0].lon, head[2])]
        else:
            c.free_at = max(c.free_at, t)
            c.route = _plan(c, a.route, travel, c.lat, c.lon, c.free_at)
        for oid in a.order_ids:
            outcomes[oid].assigned = True


def _reposition_round(t, epoch_s, history, couriers, travel, config) -> None:
    """Idle couriers move toward the next slot's forecast demand; those busy until then count as
    supply where their plan ends, moving ones where they are heading."""
    now_s = epoch_s + t
    forecast = forecast_slot(history, now_s=now_s, config=config.forecast)
    horizon = forecast.slot_end_s - epoch_s
    idle, elsewhere = [], []
    for c in couriers:
        if c.route:
            stop, _, done = c.route[-1]
            if done <= horizon:
                elsewhere.append((stop.lat, stop.lon))
        elif c.move is not None:
            elsewhere.append((c.move[2], c.move[3]))
        elif c.end_s - t >= config.reposition_min_shift_left_s:
            idle.append(IdleDriver(c.id, c.lat, c.lon))
        else:
            elsewhere.append((c.lat, c.lon))
    moves = propose_moves(
        idle,
        forecast,
        other_supply=supply_by_cell(elsewhere, config.forecast.resolution),
        config=config.moves,
    )
    by_id = {c.id: c for c in couriers}
    for move in moves:
        c = by_id[move.driver_id]
        depart = max(c.free_at, t)
        seconds = float(
            matrix_s(
                travel,
                [(c.lat, c.lon)],
                [(move.lat, move.lon)],
                depart_at=depart,
                vehicle_type=c.vehicle_type,
            )[0, 0]
        )
        c.move = (c.lat, c.lon, move.lat, move.lon, depart, depart + seconds)
        c.moves += 1


def _metrics(outcomes: dict, fleet: list, config: SimConfig, seconds: float) -> dict:
    ctd = [(oc.dropoff_s - oc.placed_s) / 60 for oc in outcomes.values() if oc.dropoff_s is not None]
    rtp = [(oc.pickup_s - oc.ready_s) / 60 for oc in outcomes.values() if oc.pickup_s is not None]
    hours = [(c.end_s - c.start_s) / 3600 for c in fleet]
    pay_per_hour = [
        max(config.pay_per_order_minor * c.delivered, config.guaranteed_hourly_minor * h) / h
        for c, h in zip(fleet, hours, strict=True)
        if h > 0
    ]
    target_min = config.target_s / 60
    n = len(outcomes)

    def rounded(x, digits=2):
        return None if x is None else round(float(x), digits)

    return {
        "policy": config.label,
        "orders": n,
        "delivered": len(ctd),
        "mean_click_to_door_min": rounded(np.mean(ctd)) if ctd else None,
        "p90_click_to_door_min": rounded(np.percentile(ctd, 90)) if ctd else None,
        "on_time_pct": rounded(100 * sum(1 for x in ctd if x <= target_min + 1e-9) / n) if n else None,
        "mean_ready_to_pickup_min": rounded(np.mean(rtp)) if rtp else None,
        "orders_per_courier_hour": rounded(len(ctd) / sum(hours), 3) if sum(hours) > 0 else None,
        "earnings_per_courier_hour": {
            "mean": round(float(np.mean(pay_per_hour))) if pay_per_hour else None,
            "p10": round(float(np.percentile(pay_per_hour, 10))) if pay_per_hour else None,
            "p90": round(float(np.percentile(pay_per_hour, 90))) if pay_per_hour else None,
            "unit": "minor per hour",
        },
        "repositioning_moves": sum(c.moves for c in fleet),
        "seconds": round(seconds, 3),
    }
