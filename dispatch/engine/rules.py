"""An organisation's dispatch rules: declarative configuration, validated with clear errors.

`parse_rules(dict)` returns a frozen `Rules`; an unknown key or a bad value raises
`RulesError` naming the path (`zones.mode`, `excluded_drivers[1].client`, ...).

    {
      "weights": {"delivery_delay": 1.0, "delay_to_others": 1.0, "added_route": 0.1},
      "lateness": {"mode": "penalise", "penalty_per_s": 5.0},   # or "forbid"
      "unassigned_penalty_s": 7200,
      "priority_bonus_s": 300,
      "owned_fleet_first": {"enabled": true, "bonus_s": 600},
      "max_pickup_distance_m": 5000,
      "high_value": {"threshold_minor": 10000, "score_weight_s": 900, "min_score": 0.8},
      "zones": {"mode": "bonus", "bonus_s": 120},              # "off" | "bonus" | "hard"
      "excluded_drivers": [{"client": "acme", "driver": "d-17"}],
      "batching": {"enabled": true, "max_batch_size": 3, "bundle_same_pickup": true,
                   "bundle_ready_window_s": 300},
      "k_nearest": 12,
      "mode": "optimal",                  # or "broadcast": each order to every eligible driver
      "broadcast": {"max_drivers_per_order": 20},   # broadcast: the nearest eligible drivers only
      "auction": {"after_declines": 2, "when_minutes_to_pickup_end": 10,
                  "step_minor": 100, "cap_minor": 500},
      "reposition": {"enabled": false, "max_distance_m": 3000, "incentive_minor": 0,
                     "min_expected_gain": 0.5, "ttl_minutes": 10}
    }
"""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


class RulesError(ValueError):
    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class Weights:
    delivery_delay: float = 1.0
    delay_to_others: float = 1.0
    added_route: float = 0.1


@dataclass(frozen=True)
class Lateness:
    mode: str = "penalise"  # "penalise" | "forbid"
    penalty_per_s: float = 5.0


@dataclass(frozen=True)
class OwnedFleetFirst:
    enabled: bool = False
    bonus_s: float = 600.0


@dataclass(frozen=True)
class HighValue:
    threshold_minor: int | None = None  # None: no order counts as high value
    score_weight_s: float = 900.0  # cost of a score-0 driver on a high-value order
    min_score: float | None = None  # hard: below this a driver gets no high-value order


@dataclass(frozen=True)
class Zones:
    mode: str = "bonus"  # "off" | "bonus" | "hard"
    bonus_s: float = 120.0


@dataclass(frozen=True)
class Batching:
    enabled: bool = True
    max_batch_size: int = 3  # orders on board or planned at once
    bundle_same_pickup: bool = True
    bundle_ready_window_s: float = 300.0


@dataclass(frozen=True)
class Auction:
    """An incentive for work nobody takes: once an order was declined or let lapse
    `after_declines` times a step is added per miss from there, and a step more within
    `when_minutes_to_pickup_end` of its pickup window's end (0: no time trigger); never above
    `cap_minor`. Minor units of the organisation's currency."""

    after_declines: int
    step_minor: int
    cap_minor: int
    when_minutes_to_pickup_end: int = 0


@dataclass(frozen=True)
class Broadcast:
    """Send-to-all limits: each order goes to at most `max_drivers_per_order` drivers (the
    nearest who may take it)."""

    max_drivers_per_order: int = 20


# How a round offers work: the engine's best driver per unit of work, or every eligible one.
MODES = ("optimal", "broadcast")


@dataclass(frozen=True)
class Reposition:
    """Predictive dispatch: suggest idle drivers move toward forecast demand (off by default;
    on the bundled test day it helped little, see the README). `incentive_minor` is paid to a
    driver who accepts, in minor units of the organisation's currency."""

    enabled: bool = False
    max_distance_m: float = 3000.0
    incentive_minor: int = 0
    min_expected_gain: float = 0.5  # expected orders a move must cover
    ttl_minutes: int = 10  # a suggestion lapses unanswered after this


@dataclass(frozen=True)
class Rules:
    weights: Weights = field(default_factory=Weights)
    lateness: Lateness = field(default_factory=Lateness)
    unassigned_penalty_s: float = 7200.0
    priority_bonus_s: float = 300.0
    owned_fleet_first: OwnedFleetFirst = field(default_factory=OwnedFleetFirst)
    max_pickup_distance_m: float | None = None
    high_value: HighValue = field(default_factory=HighValue)
    zones: Zones = field(default_factory=Zones)
    excluded_drivers: frozenset[tuple[Hashable, Hashable]] = frozenset()  # (client, driver)
    batching: Batching = field(default_factory=Batching)
    k_nearest: int = 12
    auction: Auction | None = None  # None: no incentives
    mode: str = "optimal"  # "optimal" | "broadcast"
    broadcast: Broadcast = field(default_factory=Broadcast)
    reposition: Reposition = field(default_factory=Reposition)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value, path: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise RulesError(path, f"expected an object, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise RulesError(path, f"keys must be strings, got {key!r}")
    return value


def _check_keys(value: Mapping, allowed: set[str], path: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise RulesError(_join(path, unknown[0]), f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _number(value, path: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(path, f"expected a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise RulesError(path, "must be a finite number")
    if minimum is not None and value < minimum:
        raise RulesError(path, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise RulesError(path, f"must be at most {maximum}, got {value}")
    return float(value)


def _integer(value, path: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(path, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise RulesError(path, f"must be at least {minimum}, got {value}")
    return value


def _boolean(value, path: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(path, f"expected true or false, got {value!r}")
    return value


def _choice(value, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise RulesError(path, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _identifier(value, path: str) -> Hashable:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise RulesError(path, f"expected a non-empty string or integer id, got {value!r}")
    return value


def _section(raw: Mapping, key: str, path: str, fields: dict, cls):
    """Parse a nested object whose every field has a parser; missing fields keep the default."""
    if key not in raw:
        return cls()
    here = _join(path, key)
    value = _mapping(raw[key], here)
    _check_keys(value, set(fields), here)
    return cls(**{name: fields[name](value[name], _join(here, name)) for name in value})


def _optional(parser):
    def parse(value, path):
        return None if value is None else parser(value, path)

    return parse


def _nonneg(value, path):
    return _number(value, path, minimum=0)


def parse_rules(raw: Mapping | None) -> Rules:
    """Validate a rules document (a dict from JSON or YAML) into `Rules`."""
    if raw is None:
        return Rules()
    raw = _mapping(raw, "")
    top = {
        "weights",
        "lateness",
        "unassigned_penalty_s",
        "priority_bonus_s",
        "owned_fleet_first",
        "max_pickup_distance_m",
        "high_value",
        "zones",
        "excluded_drivers",
        "batching",
        "k_nearest",
        "auction",
        "mode",
        "broadcast",
        "reposition",
    }
    _check_keys(raw, top, "")
    excluded: set[tuple[Hashable, Hashable]] = set()
    if "excluded_drivers" in raw:
        items = raw["excluded_drivers"]
        if not isinstance(items, list):
            raise RulesError("excluded_drivers", "expected a list of {client, driver}")
        for i, item in enumerate(items):
            here = f"excluded_drivers[{i}]"
            item = _mapping(item, here)
            _check_keys(item, {"client", "driver"}, here)
            for name in ("client", "driver"):
                if name not in item:
                    raise RulesError(_join(here, name), "required")
            excluded.add(
                (_identifier(item["client"], f"{here}.client"), _identifier(item["driver"], f"{here}.driver"))
            )
    kwargs = {
        "weights": _section(
            raw,
            "weights",
            "",
            {"delivery_delay": _nonneg, "delay_to_others": _nonneg, "added_route": _nonneg},
            Weights,
        ),
        "lateness": _section(
            raw,
            "lateness",
            "",
            {"mode": lambda v, p: _choice(v, p, ("penalise", "forbid")), "penalty_per_s": _nonneg},
            Lateness,
        ),
        "owned_fleet_first": _section(
            raw, "owned_fleet_first", "", {"enabled": _boolean, "bonus_s": _nonneg}, OwnedFleetFirst
        ),
        "high_value": _section(
            raw,
            "high_value",
            "",
            {
                "threshold_minor": _optional(lambda v, p: _integer(v, p, minimum=0)),
                "score_weight_s": _nonneg,
                "min_score": _optional(lambda v, p: _number(v, p, minimum=0, maximum=1)),
            },
            HighValue,
        ),
        "zones": _section(
            raw,
            "zones",
            "",
            {"mode": lambda v, p: _choice(v, p, ("off", "bonus", "hard")), "bonus_s": _nonneg},
            Zones,
        ),
        "batching": _section(
            raw,
            "batching",
            "",
            {
                "enabled": _boolean,
                "max_batch_size": lambda v, p: _integer(v, p, minimum=1),
                "bundle_same_pickup": _boolean,
                "bundle_ready_window_s": _nonneg,
            },
            Batching,
        ),
        "broadcast": _section(
            raw, "broadcast", "", {"max_drivers_per_order": lambda v, p: _integer(v, p, minimum=1)}, Broadcast
        ),
        "reposition": _section(
            raw,
            "reposition",
            "",
            {
                "enabled": _boolean,
                "max_distance_m": lambda v, p: _number(v, p, minimum=100, maximum=50_000),
                "incentive_minor": lambda v, p: _integer(v, p, minimum=0),
                "min_expected_gain": lambda v, p: _number(v, p, minimum=0.1, maximum=100),
                "ttl_minutes": lambda v, p: _integer(v, p, minimum=1),
            },
            Reposition,
        ),
        "excluded_drivers": frozenset(excluded),
    }
    if "unassigned_penalty_s" in raw:
        kwargs["unassigned_penalty_s"] = _number(
            raw["unassigned_penalty_s"], "unassigned_penalty_s", minimum=1
        )
    if "priority_bonus_s" in raw:
        kwargs["priority_bonus_s"] = _nonneg(raw["priority_bonus_s"], "priority_bonus_s")
    if "max_pickup_distance_m" in raw:
        kwargs["max_pickup_distance_m"] = _optional(lambda v, p: _number(v, p, minimum=0))(
            raw["max_pickup_distance_m"], "max_pickup_distance_m"
        )
    if "k_nearest" in raw:
        kwargs["k_nearest"] = _integer(raw["k_nearest"], "k_nearest", minimum=1)
    if "mode" in raw:
        kwargs["mode"] = _choice(raw["mode"], "mode", MODES)
    if "auction" in raw:
        kwargs["auction"] = _auction(raw["auction"])
    return Rules(**kwargs)


def _auction(value) -> Auction:
    value = _mapping(value, "auction")
    fields = {
        "after_declines": 1,
        "when_minutes_to_pickup_end": 0,
        "step_minor": 1,
        "cap_minor": 1,
    }
    _check_keys(value, set(fields), "auction")
    for name in ("after_declines", "step_minor", "cap_minor"):
        if name not in value:
            raise RulesError(f"auction.{name}", "required")
    auction = Auction(
        **{
            name: _integer(value[name], f"auction.{name}", minimum=minimum)
            for name, minimum in fields.items()
            if name in value
        }
    )
    if auction.cap_minor < auction.step_minor:
        raise RulesError(
            "auction.cap_minor",
            f"must be at least step_minor ({auction.step_minor}), got {auction.cap_minor}",
        )
    return auction
