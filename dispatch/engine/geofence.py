"""Geofences from GPS pings: when a driver has arrived at a stop, and when they left it.

One small state machine per (driver, stop): OUTSIDE -> DWELLING -> INSIDE -> LEFT.

- A ping is evidence only if its accuracy circle settles the question: *inside* when the whole
  circle lies within the entry radius (distance + accuracy <= radius), *outside* when none of
  it lies within the exit radius (distance - accuracy > exit radius). Anything else (a vague
  fix, a fix with no accuracy, a fix between the two radii) changes nothing.
- Arrival needs a dwell: `dwell_pings` consecutive inside pings spanning `dwell_seconds`, so a
  single stray fix or a drive past the door is not an arrival. A confident outside ping while
  dwelling starts over.
- Departure needs `dwell_pings` consecutive outside pings beyond the exit radius, which is
  larger than the entry radius (hysteresis): jitter around the edge never flaps the state.
- The state moves forward in time only: a ping older than the last one seen is ignored, and
  pings more than `max_gap_seconds` apart are not consecutive (the phone was off).

Plain data in, plain data out; no Django (import-linter checks it).
"""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dispatch.engine.geo import haversine_m

DEFAULT_RADIUS_M = 50


class Phase(StrEnum):
    OUTSIDE = "OUTSIDE"
    DWELLING = "DWELLING"
    INSIDE = "INSIDE"
    LEFT = "LEFT"


@dataclass(frozen=True)
class Rule:
    """How sure a geofence must be. The exit radius is the entry radius times `exit_factor`
    (at least `min_exit_margin_m` more)."""

    dwell_pings: int = 2
    dwell_seconds: float = 10.0
    exit_factor: float = 1.5
    min_exit_margin_m: float = 20.0
    # Pings further apart than this are not consecutive: a run of evidence starts over.
    max_gap_seconds: float = 120.0

    def exit_radius_m(self, radius_m: float) -> float:
        return max(radius_m * self.exit_factor, radius_m + self.min_exit_margin_m)


@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    at: datetime
    accuracy_m: float | None = None


@dataclass(frozen=True)
class Fence:
    lat: float
    lon: float
    radius_m: float = DEFAULT_RADIUS_M


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.OUTSIDE
    last_at: datetime | None = None
    # The run of consecutive evidence pings towards the next phase: count and first one's time.
    run_count: int = 0
    run_started_at: datetime | None = None
    entered_at: datetime | None = None
    exited_at: datetime | None = None


@dataclass(frozen=True)
class Evidence:
    """One ping as the geofence read it."""

    at: datetime
    distance_m: float
    accuracy_m: float | None
    reading: str  # "inside", "outside" or "unsure"

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "distance_m": round(self.distance_m, 1),
            "accuracy_m": self.accuracy_m,
            "reading": self.reading,
        }

    def sentence(self) -> str:
        accuracy = "no accuracy" if self.accuracy_m is None else f"± {self.accuracy_m:g} m"
        return f"{self.distance_m:.0f} m away ({accuracy}) at {self.at:%H:%M:%S}"


@dataclass(frozen=True)
class Step:
    state: State
    evidence: Evidence
    entered: bool = False  # this ping confirmed the arrival
    exited: bool = False  # this ping confirmed the departure
    stale: bool = False  # older than the last ping seen: ignored


def _broken_run(state: State) -> State:
    """The run towards the next phase is over; a dwell that ended is no longer a dwell."""
    phase = Phase.OUTSIDE if state.phase == Phase.DWELLING else state.phase
    return replace(state, phase=phase, run_count=0, run_started_at=None)


def read(fence: Fence, fix: Fix, rule: Rule) -> Evidence:
    distance = haversine_m(fix.lat, fix.lon, fence.lat, fence.lon)
    reading = "unsure"
    if fix.accuracy_m is not None:
        if distance + fix.accuracy_m <= fence.radius_m:
            reading = "inside"
        elif distance - fix.accuracy_m > rule.exit_radius_m(fence.radius_m):
            reading = "outside"
    return Evidence(at=fix.at, distance_m=distance, accuracy_m=fix.accuracy_m, reading=reading)


def step(fence: Fence, state: State, fix: Fix, rule: Rule = Rule()) -> Step:
    """The state after one more ping."""
    evidence = read(fence, fix, rule)
    if state.last_at is not None and fix.at <= state.last_at:
        return Step(state=state, evidence=evidence, stale=True)
    if state.run_count and (fix.at - state.last_at).total_seconds() > rule.max_gap_seconds:
        state = _broken_run(state)
    state = replace(state, last_at=fix.at)
    wanted = "outside" if state.phase == Phase.INSIDE else "inside"
    if evidence.reading == "unsure":
        return Step(state=state, evidence=evidence)
    if evidence.reading != wanted:
        # Evidence for the current phase breaks a run towards the next one; a dwell that the
        # driver walked out of is no longer a dwell.
        return Step(state=_broken_run(state), evidence=evidence)
    started = state.run_started_at if state.run_count else fix.at
    state = replace(state, run_count=state.run_count + 1, run_started_at=started)
    if wanted == "inside":
        if state.phase in (Phase.OUTSIDE, Phase.LEFT):
            state = replace(state, phase=Phase.DWELLING, entered_at=None, exited_at=None)
        dwelt = (fix.at - started).total_seconds()
        if state.run_count >= rule.dwell_pings and dwelt >= rule.dwell_seconds:
            state = replace(state, phase=Phase.INSIDE, entered_at=started, run_count=0, run_started_at=None)
            return Step(state=state, evidence=evidence, entered=True)
        return Step(state=state, evidence=evidence)
    if state.run_count >= rule.dwell_pings:
        state = replace(state, phase=Phase.LEFT, exited_at=started, run_count=0, run_started_at=None)
        return Step(state=state, evidence=evidence, exited=True)
    return Step(state=state, evidence=evidence)
