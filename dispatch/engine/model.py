"""The engine's plain inputs and outputs: drivers, orders, stops and explained assignments.

Times are seconds on one clock chosen by the caller (epoch seconds, or seconds since the start
of a simulated day); money is in integer minor units; positions are (lat, lon) degrees.
"""

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, NamedTuple

INF = math.inf

DriverStatus = Literal["available", "busy", "offline", "break"]
StopKind = Literal["pickup", "dropoff"]


@dataclass(frozen=True)
class Stop:
    """One stop of a route: pick up or drop off one order, inside its window."""

    order_id: Hashable
    kind: StopKind
    lat: float
    lon: float
    open_s: float = 0.0  # nobody starts the stop before this
    close_s: float = INF  # for a drop-off: the promise (lateness is measured against it)
    service_s: float = 0.0
    weight_kg: float = 0.0
    volume_l: float = 0.0


@dataclass(frozen=True)
class Order:
    """An open order: where and when it is picked up and dropped off, and what it needs."""

    id: Hashable
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    pickup_open_s: float = 0.0
    pickup_close_s: float = INF
    dropoff_open_s: float = 0.0
    dropoff_close_s: float = INF  # the promise to the customer
    pickup_service_s: float = 0.0
    dropoff_service_s: float = 0.0
    weight_kg: float = 0.0
    volume_l: float = 0.0
    value_minor: int = 0
    requirements: frozenset[str] = frozenset()  # e.g. {"bulky", "cold_chain"}
    priority: int = 0  # higher goes first
    zone: str | None = None
    client_id: Hashable | None = None
    pickup_id: Hashable | None = None  # orders with the same pickup id (or place) can be bundled

    def stops(self) -> tuple[Stop, Stop]:
        """The order's pickup and drop-off stops (the same two objects on every call)."""
        return self._stops

    @cached_property
    def _stops(self) -> tuple[Stop, Stop]:
        return (
            Stop(
                self.id,
                "pickup",
                self.pickup_lat,
                self.pickup_lon,
                self.pickup_open_s,
                self.pickup_close_s,
                self.pickup_service_s,
                self.weight_kg,
                self.volume_l,
            ),
            Stop(
                self.id,
                "dropoff",
                self.dropoff_lat,
                self.dropoff_lon,
                self.dropoff_open_s,
                self.dropoff_close_s,
                self.dropoff_service_s,
                -self.weight_kg,
                -self.volume_l,
            ),
        )


@dataclass(frozen=True)
class Driver:
    """A driver as the engine sees them at the start of a round.

    `lat`/`lon`/`available_at_s` are where and when the driver is next free to change plan (for
    a driver on the way to a stop: that stop, when it is done); `route` is the rest of the
    current plan, in order, and `load_kg`/`load_l` what is on board at that point.
    """

    id: Hashable
    lat: float
    lon: float
    capacity_kg: float
    capacity_l: float = INF
    vehicle_type: str = "car"
    features: frozenset[str] = frozenset()  # what the vehicle can do: "bulky", "cold_chain", ...
    available_at_s: float = 0.0
    shift_end_s: float = INF  # no new pickup starts after this
    load_kg: float = 0.0
    load_l: float = 0.0
    route: tuple[Stop, ...] = ()
    score: float = 1.0  # performance, 0..1
    zones: frozenset[str] = frozenset()  # preferred (or, by rule, allowed) zones; empty: anywhere
    status: DriverStatus = "available"
    owned: bool = False  # in the organisation's own fleet


class CostTerms(NamedTuple):
    """Why an assignment costs what it costs (seconds-equivalent; lower is better)."""

    travel_to_pickup_s: float  # from where the driver is free to the (first) pickup
    wait_at_pickup_s: float  # arrived before the pickup window opened
    delivery_delay_s: float  # drop-off later than the fastest possible, summed over the unit
    delay_to_others_s: float  # how much later the driver's existing drop-offs happen
    late_s: float  # added lateness against the drop-off promises (new and existing)
    added_route_s: float  # how much longer the driver's plan becomes
    score_s: float = 0.0  # penalty for a low performance score on a high-value order
    zone_s: float = 0.0  # minus the preferred-zone bonus
    priority_s: float = 0.0  # minus the priority bonus
    owned_fleet_s: float = 0.0  # minus the owned-fleet bonus
    total: float = 0.0

    def lines(self) -> list[str]:
        """The terms as short sentences for a dispatcher or a driver."""
        out = [
            f"{self.travel_to_pickup_s / 60:.1f} min to the pickup",
            f"drop-off {self.delivery_delay_s / 60:.1f} min later than the fastest possible",
        ]
        if self.wait_at_pickup_s > 0:
            out.append(f"waits {self.wait_at_pickup_s / 60:.1f} min for the pickup window")
        if self.delay_to_others_s > 0:
            out.append(f"delays the driver's other drop-offs by {self.delay_to_others_s / 60:.1f} min")
        if self.late_s > 0:
            out.append(f"{self.late_s / 60:.1f} min past the promised time")
        for value, text in (
            (self.score_s, "low performance score for a high-value order"),
            (self.zone_s, "preferred zone"),
            (self.priority_s, "priority"),
            (self.owned_fleet_s, "own fleet first"),
        ):
            if value:
                out.append(f"{text}: {value / 60:+.1f} min")
        return out


@dataclass(frozen=True)
class Assignment:
    """One driver takes one unit of work (an order, or orders bundled from one pickup)."""

    driver_id: Hashable
    order_ids: tuple[Hashable, ...]
    route: tuple[Stop, ...]  # the driver's new plan after `available_at_s`
    terms: CostTerms
    pickup_at_s: float  # when the (first) new pickup starts
    dropoff_at_s: dict = field(default_factory=dict)  # order id -> when its drop-off starts

    @property
    def cost(self) -> float:
        return self.terms.total


@dataclass(frozen=True)
class RoundResult:
    assignments: list[Assignment]
    unassigned: dict  # order id -> reason
