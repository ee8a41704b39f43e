"""The travel times the product plans with (dispatch rounds, drivers' routes and ETAs): chosen
in this one place, behind the engine's TravelTimes interface."""

from dispatch.engine.travel import HaversineTravelTimes, TravelTimes

# Straight-line travel until road times plug in: a city courier's average speed and a typical
# street detour.
SPEED_MPS = 8.0
DETOUR_FACTOR = 1.3


def travel_times() -> TravelTimes:
    return HaversineTravelTimes(SPEED_MPS, DETOUR_FACTOR)
