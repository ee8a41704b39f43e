"""`manage.py simulate`: the dispatch engine on an order stream in simulated time.

    manage.py simulate --orders ORDERS.csv --couriers COURIERS.csv --policy greedy|optimal \
        [--reposition | --compare-reposition] --json

Reads the CSVs (formats in the README), runs `dispatch.engine.simulation.simulate` and prints
one JSON object with the day's figures (`--reposition`: idle couriers move toward forecast
demand). `--compare-reposition` runs the day twice, without and with repositioning, and prints
both side by side (JSON: a list of the two objects). The settings (speed, service times,
target, pay) come from the flags, else from `--parameters` (default: simulation.json beside
ORDERS.csv, written by import_mdrplib from the instance), else the simulator's defaults. Thin:
all the work is in the pure engine.
"""

import dataclasses
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dispatch.engine.orders_csv import CsvError, read_couriers, read_orders
from dispatch.engine.simulation import POLICIES, SimConfig, simulate
from dispatch.engine.travel import HaversineTravelTimes
from dispatch.management.simulation_settings import SETTINGS_FILE, add_flags, read_settings_file, resolve
from dispatch.travel import PROVIDERS, travel_times


class Command(BaseCommand):
    help = "Simulate a day of orders and couriers under a dispatch policy; print the figures."

    def add_arguments(self, parser):
        parser.add_argument("--orders", required=True, type=Path)
        parser.add_argument("--couriers", required=True, type=Path)
        parser.add_argument("--policy", required=True, choices=POLICIES)
        add_flags(parser)
        parser.add_argument(
            "--parameters", type=Path, help=f"default: {SETTINGS_FILE} beside --orders, if any"
        )
        parser.add_argument("--round-seconds", type=float, default=60.0)
        parser.add_argument(
            "--travel",
            choices=PROVIDERS,
            default=None,
            help="travel times (default: the TRAVEL_TIME_PROVIDER setting); haversine uses --speed-mps for all",
        )
        moving = parser.add_mutually_exclusive_group()
        moving.add_argument(
            "--reposition", action="store_true", help="idle couriers move toward forecast demand"
        )
        moving.add_argument(
            "--compare-reposition", action="store_true", help="run without and with repositioning"
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object (the default is key: value lines)"
        )

    def handle(self, *args, **opts):
        orders = self._read(Path(opts["orders"]), read_orders)
        couriers = self._read(Path(opts["couriers"]), read_couriers)
        beside = Path(opts["orders"]).parent / SETTINGS_FILE
        path = Path(opts["parameters"]) if opts["parameters"] else (beside if beside.is_file() else None)
        chosen = resolve(opts, read_settings_file(path) if path else {})
        if chosen["pay_per_order_minor"] < 0 or chosen["guaranteed_hourly_minor"] < 0:
            raise CommandError("pay must not be negative")
        try:
            config = SimConfig(
                policy=opts["policy"],
                speed_mps=chosen["speed_mps"],
                pickup_service_s=chosen["pickup_service_s"],
                dropoff_service_s=chosen["dropoff_service_s"],
                target_s=chosen["target_minutes"] * 60,
                round_s=opts["round_seconds"],
                pay_per_order_minor=chosen["pay_per_order_minor"],
                guaranteed_hourly_minor=chosen["guaranteed_hourly_minor"],
                reposition=opts["reposition"],
            )
            configs = [config]
            if opts["compare_reposition"]:
                configs.append(dataclasses.replace(config, reposition=True))
            # --speed-mps: every courier's straight-line speed, also for places off the road network.
            provider = opts["travel"] or settings.TRAVEL_TIME_PROVIDER
            results = [
                simulate(
                    orders,
                    couriers,
                    c,
                    travel_times(provider=provider, fallback=HaversineTravelTimes(c.speed_mps)),
                )
                for c in configs
            ]
        except ValueError as exc:
            raise CommandError(str(exc))
        if opts["json"]:
            self.stdout.write(json.dumps(results if len(results) > 1 else results[0]))
            return
        for key in results[0]:
            self.stdout.write(f"{key}: " + " | ".join(str(r[key]) for r in results))

    @staticmethod
    def _read(path: Path, reader):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}")
        try:
            return reader(text)
        except CsvError as exc:
            raise CommandError(f"{path.name}, {exc}")
