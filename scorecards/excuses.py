"""Whether a late delivery was the driver's doing (pure: no Django).

The services gather what the system recorded about the order (its windows, when it was
assigned, the geofence's pickup visit, traffic incidents on the way, re-sequenced stops, the
travel time) into `LateFacts`; `find_excuse` says which cause, if any, explains the lateness,
with every check's inputs so the driver and a reviewer can see what was looked at.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Time at a pickup that is just the handover, not waiting for the order to be ready.
PICKUP_HANDOVER_S = 300


@dataclass(frozen=True)
class LateFacts:
    promised_by: datetime
    finished_at: datetime
    pickup_window_start: datetime
    pickup_window_end: datetime
    assigned_at: datetime | None
    travel_s: float | None  # pickup to drop-off at the recorded travel times
    pickup_arrived_at: datetime | None = None  # the pickup geofence's arrival
    pickup_departed_at: datetime | None = None  # its departure, else the pick-up step
    # Incidents on the pickup -> drop-off line while the order was on board.
    incidents: list[dict] = field(default_factory=list)
    # Stops of this order the system moved later after the driver accepted it.
    resequences: list[dict] = field(default_factory=list)

    @property
    def late_s(self) -> int:
        return max(0, int((self.finished_at - self.promised_by).total_seconds()))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def late_pickup_window(facts: LateFacts) -> tuple[bool, dict]:
    """Assigned, or ready, so late that even going straight from the pickup at the recorded
    travel time would miss the promise."""
    earliest_start = max(filter(None, [facts.assigned_at, facts.pickup_window_start]))
    inputs = {
        "assigned_at": _iso(facts.assigned_at),
        "pickup_window_start": _iso(facts.pickup_window_start),
        "travel_s": round(facts.travel_s) if facts.travel_s is not None else None,
        "promised_by": _iso(facts.promised_by),
    }
    if facts.travel_s is None:
        return False, inputs
    earliest_arrival = earliest_start + timedelta(seconds=facts.travel_s)
    inputs["earliest_possible_arrival"] = _iso(earliest_arrival)
    return earliest_arrival > facts.promised_by, inputs


def food_not_ready(facts: LateFacts) -> tuple[bool, dict]:
    """The driver reached the pickup within its window and waited there, past the order's
    ready time (the window's start) and a normal handover, at least as long as they were late."""
    inputs = {
        "pickup_arrived_at": _iso(facts.pickup_arrived_at),
        "pickup_departed_at": _iso(facts.pickup_departed_at),
        "pickup_window_start": _iso(facts.pickup_window_start),
        "pickup_window_end": _iso(facts.pickup_window_end),
        "handover_s": PICKUP_HANDOVER_S,
        "late_s": facts.late_s,
    }
    if facts.pickup_arrived_at is None or facts.pickup_departed_at is None:
        return False, inputs
    if facts.pickup_arrived_at >= facts.pickup_window_end:
        return False, inputs  # the driver came after the window: their own delay
    ready = max(facts.pickup_arrived_at, facts.pickup_window_start)
    waited_s = int((facts.pickup_departed_at - ready).total_seconds()) - PICKUP_HANDOVER_S
    inputs["waited_past_ready_s"] = max(0, waited_s)
    return waited_s > 0 and waited_s >= facts.late_s, inputs


def traffic_incident(facts: LateFacts) -> tuple[bool, dict]:
    """A traffic incident on the way from the pickup to the drop-off while the order was on board."""
    return bool(facts.incidents), {"incidents": facts.incidents}


def route_resequenced(facts: LateFacts) -> tuple[bool, dict]:
    """The system re-sequenced the driver's route after they accepted, moving this order's stop later."""
    return bool(facts.resequences), {"resequences": facts.resequences}


# In order: the first that holds is the cause; all are recorded.
CHECKS = (
    ("LATE_PICKUP_WINDOW", late_pickup_window),
    ("FOOD_NOT_READY", food_not_ready),
    ("TRAFFIC_INCIDENT", traffic_incident),
    ("ROUTE_RESEQUENCED", route_resequenced),
)


def find_excuse(facts: LateFacts) -> tuple[str, dict]:
    """The cause ("" when none) and the inputs of every check."""
    cause, checks = "", {}
    for name, check in CHECKS:
        held, inputs = check(facts)
        checks[name] = {"held": held, **inputs}
        if held and not cause:
            cause = name
    return cause, {"late_s": facts.late_s, "checks": checks}
