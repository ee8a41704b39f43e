"""`manage.py import_mdrplib DIR --origin LAT,LON --date YYYY-MM-DD --out DIR [--speed-mps ...]`.

Turns a Grubhub MDRPLIB instance (planar metres, minutes) into the simulator's orders.csv and
couriers.csv, placed around ORIGIN on DATE (UTC), and simulation.json: the instance's
parameters (instance_parameters.txt: speed, service times, target click-to-door, pay) in the
simulator's units, each overridden by its flag if given; `simulate` reads it as its defaults.
The files are written whole or not at all.
"""

import json
import os
import tempfile
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.engine.mdrplib import MdrplibError, read_instance, read_parameters, simulation_settings
from dispatch.engine.orders_csv import CsvError, read_couriers, read_orders, write_couriers, write_orders
from dispatch.management.simulation_settings import SETTINGS_FILE, add_flags, resolve


def parse_origin(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise CommandError(f"--origin: expected LAT,LON, got {text!r}")
    if not (-85 <= lat <= 85 and -180 <= lon <= 180):
        raise CommandError(f"--origin: out of range: {text!r}")
    return lat, lon


class Command(BaseCommand):
    help = "Convert a Grubhub MDRPLIB instance into orders.csv and couriers.csv for `simulate`."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--origin", required=True, help="LAT,LON of the instance's (0, 0)")
        parser.add_argument("--date", required=True, help="the day, YYYY-MM-DD (UTC)")
        parser.add_argument("--out", required=True, type=Path)
        add_flags(parser)

    def handle(self, *args, **opts):
        origin = parse_origin(opts["origin"])
        try:
            day = date.fromisoformat(opts["date"])
        except ValueError:
            raise CommandError(f"--date: expected YYYY-MM-DD, got {opts['date']!r}")
        directory = Path(opts["directory"])
        if not directory.is_dir():
            raise CommandError(f"{directory}: not a directory")
        try:
            orders, couriers = read_instance(directory, origin=origin, day=day)
            instance = simulation_settings(read_parameters(directory))
        except MdrplibError as exc:
            raise CommandError(str(exc))
        settings = {**instance, **resolve(opts, instance)}
        files = {
            "orders.csv": write_orders(orders),
            "couriers.csv": write_couriers(couriers),
            SETTINGS_FILE: json.dumps(settings, indent=2) + "\n",
        }
        try:  # what we write must read back
            read_orders(files["orders.csv"])
            read_couriers(files["couriers.csv"])
        except CsvError as exc:
            raise CommandError(f"converted data is invalid: {exc}")
        out = Path(opts["out"])
        out.mkdir(parents=True, exist_ok=True)
        temps = {}
        try:
            for name, text in files.items():
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                temps[name] = tmp
            for name, tmp in temps.items():
                os.replace(tmp, out / name)
        finally:
            for tmp in temps.values():
                if os.path.exists(tmp):
                    os.unlink(tmp)
        self.stdout.write(f"{len(orders)} orders, {len(couriers)} couriers -> {out}")
        self.stdout.write("simulation settings: " + ", ".join(f"{k}={v:g}" for k, v in settings.items()))
