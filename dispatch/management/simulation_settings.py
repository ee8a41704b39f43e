"""The simulator's settings as command-line flags, shared by `import_mdrplib` (which takes its
defaults from the instance's instance_parameters.txt and writes them to simulation.json) and
`simulate` (which takes its defaults from that file, when there is one). A flag given on the
command line always wins; the last fallback is the simulator's own default (SimConfig)."""

import json
from pathlib import Path

from django.core.management.base import CommandError

from dispatch.engine.mdrplib import SIMULATION_SETTINGS
from dispatch.engine.simulation import SimConfig

SETTINGS_FILE = "simulation.json"
_BUILT_IN = SimConfig()
BUILT_IN_DEFAULTS = {
    "speed_mps": _BUILT_IN.speed_mps,
    "pickup_service_s": _BUILT_IN.pickup_service_s,
    "dropoff_service_s": _BUILT_IN.dropoff_service_s,
    "target_minutes": _BUILT_IN.target_s / 60,
    "pay_per_order_minor": _BUILT_IN.pay_per_order_minor,
    "guaranteed_hourly_minor": _BUILT_IN.guaranteed_hourly_minor,
}
TYPES = {"pay_per_order_minor": int, "guaranteed_hourly_minor": int}


def add_flags(parser) -> None:
    for name in SIMULATION_SETTINGS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=TYPES.get(name, float),
            default=None,
            help=f"default: from the instance, else {BUILT_IN_DEFAULTS[name]}",
        )


def resolve(opts: dict, defaults: dict) -> dict:
    """Each setting: the flag if given, else `defaults` (the instance's), else the built-in."""
    return {
        name: opts[name] if opts.get(name) is not None else defaults.get(name, BUILT_IN_DEFAULTS[name])
        for name in SIMULATION_SETTINGS
    }


def read_settings_file(path: Path) -> dict:
    """A simulation.json written by import_mdrplib; unknown keys are kept out."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: cannot read the simulation settings: {exc}")
    if not isinstance(data, dict):
        raise CommandError(f"{path}: expected a JSON object")
    settings = {}
    for name in SIMULATION_SETTINGS:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CommandError(f"{path}: {name}: expected a number, got {value!r}")
        settings[name] = TYPES.get(name, float)(value)
    return settings
