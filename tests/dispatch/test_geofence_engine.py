"""The pure geofence state machine: dwell, accuracy, hysteresis, jitter (no database)."""

import math
import random
from datetime import UTC, datetime, timedelta

from dispatch.engine.geo import haversine_m
from dispatch.engine.geofence import Fence, Fix, Phase, Rule, State, step

STOP = Fence(lat=60.17, lon=24.94, radius_m=50)
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
METRES_PER_DEG_LAT = haversine_m(60.0, 24.94, 61.0, 24.94)


def fix(metres_north: float, seconds: float, accuracy: float | None = 5.0) -> Fix:
    return Fix(
        lat=STOP.lat + metres_north / METRES_PER_DEG_LAT,
        lon=STOP.lon,
        at=T0 + timedelta(seconds=seconds),
        accuracy_m=accuracy,
    )


def run(fixes, rule=None, state=None):
    rule, state = rule or Rule(), state or State()
    steps = []
    for f in fixes:
        result = step(STOP, state, f, rule)
        state = result.state
        steps.append(result)
    return state, steps


def test_arrival_needs_a_dwell_of_pings_and_seconds():
    state, steps = run([fix(10, 0), fix(8, 4), fix(5, 8)])
    assert state.phase == Phase.DWELLING and not any(s.entered for s in steps)
    state, steps = run([fix(4, 10)], state=state)
    assert state.phase == Phase.INSIDE and steps[0].entered
    assert state.entered_at == T0  # arrived at the first ping of the dwell


def test_one_stray_ping_inside_is_not_an_arrival():
    state, steps = run([fix(500, 0), fix(5, 10), fix(500, 20), fix(400, 30)])
    assert state.phase == Phase.OUTSIDE and not any(s.entered for s in steps)


def test_driving_past_the_door_is_not_an_arrival():
    # A car at 15 m/s through the fence, pinging every second: several pings inside.
    _, steps = run([fix(-60 + 15 * second, second) for second in range(10)])
    assert sum(s.evidence.reading == "inside" for s in steps) >= 4
    assert not any(s.entered for s in steps)


def test_a_vague_fix_is_not_evidence_either_way():
    # 20 m from the door with 40 m accuracy: the circle does not fit in 50 m.
    state, steps = run([fix(20, 0, accuracy=40), fix(20, 10, accuracy=40), fix(20, 20, accuracy=None)])
    assert state.phase == Phase.OUTSIDE and {s.evidence.reading for s in steps} == {"unsure"}
    state, _ = run([fix(10, 30), fix(10, 40)], state=state)
    assert state.phase == Phase.INSIDE
    # Inside, a vague fix far off does not take the driver out.
    state, steps = run([fix(90, 50, accuracy=60), fix(90, 60, accuracy=60)], state=state)
    assert state.phase == Phase.INSIDE and not any(s.exited for s in steps)


def test_jitter_around_the_edge_never_flaps():
    rng = random.Random(7)
    # Arrived, then pings scattered 30-70 m away (across the 50 m edge, inside the 75 m exit).
    state, _ = run([fix(0, 0), fix(0, 10)])
    events = []
    for i in range(200):
        angle = rng.uniform(0, 2 * math.pi)
        result = step(STOP, state, fix(rng.uniform(30, 70) * math.cos(angle), 20 + 5 * i), Rule())
        state = result.state
        events += [name for name in ("entered", "exited") if getattr(result, name)]
    assert events == [] and state.phase == Phase.INSIDE


def test_departure_needs_consecutive_pings_beyond_the_exit_radius():
    rule = Rule()
    assert rule.exit_radius_m(50) == 75
    state, _ = run([fix(0, 0), fix(0, 10)])
    state, steps = run([fix(100, 20), fix(10, 25), fix(100, 30)], state=state)
    assert state.phase == Phase.INSIDE, "a ping back inside breaks the run out"
    state, steps = run([fix(150, 35)], state=state)
    assert state.phase == Phase.LEFT and steps[-1].exited
    assert state.exited_at == T0 + timedelta(seconds=30)
    # Coming back opens a new dwell.
    state, steps = run([fix(0, 100), fix(0, 110)], state=state)
    assert state.phase == Phase.INSIDE and steps[-1].entered and state.exited_at is None


def test_pings_older_than_the_last_one_are_ignored():
    state, _ = run([fix(0, 10)])
    result = step(STOP, state, fix(0, 5), Rule())
    assert result.stale and result.state == state


def test_a_larger_fence_and_a_quicker_rule():
    big = Fence(lat=STOP.lat, lon=STOP.lon, radius_m=200)
    result = step(big, State(), fix(150, 0), Rule(dwell_pings=1, dwell_seconds=0))
    assert result.entered and result.state.phase == Phase.INSIDE
    assert step(STOP, State(), fix(150, 0), Rule(dwell_pings=1, dwell_seconds=0)).state.phase == Phase.OUTSIDE


def test_pings_far_apart_in_time_are_not_a_dwell():
    state, steps = run([fix(5, 0), fix(5, 600)])  # ten minutes of silence between them
    assert state.phase == Phase.DWELLING and not any(s.entered for s in steps)
    state, steps = run([fix(5, 615)], state=state)
    assert state.phase == Phase.INSIDE and state.entered_at == T0 + timedelta(seconds=600)
