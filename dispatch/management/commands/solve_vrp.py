"""`manage.py solve_vrp FILE [FILE ...] --format solomon|lilim --time-limit SECONDS [--json]`.

Solves benchmark instances (Solomon VRPTW, Li & Lim PDPTW) with the engine's solver and checks
every answer with the independent checker before printing it. All files are read first, so a
malformed one stops the command (exit 1, one line naming the file and the line) before any work.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from dispatch.engine.vrp.checker import check
from dispatch.engine.vrp.parsers import VrpFormatError, read_instance
from dispatch.engine.vrp.solver import solve


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--time-limit: not a number: {text!r}") from None
    if not 0 < value <= 3600:
        raise CommandError(f"--time-limit: must be in (0, 3600] seconds, got {text}")
    return value


class Command(BaseCommand):
    help = "Solve Solomon / Li & Lim benchmark instances; one result line per file."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument("--format", required=True, choices=["solomon", "lilim"])
        parser.add_argument("--time-limit", default="1", help="seconds per instance (default 1)")
        parser.add_argument(
            "--workers", type=int, default=None, help="parallel runs (default: cores, at most 2)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args, **opts):
        limit = positive_seconds(opts["time_limit"])
        if opts["workers"] is not None and opts["workers"] < 1:
            raise CommandError("--workers: must be at least 1")
        try:
            instances = [read_instance(path, opts["format"]) for path in opts["files"]]
        except VrpFormatError as exc:
            raise CommandError(str(exc)) from None
        for instance in instances:
            try:
                solved = solve(instance, time_limit=limit, workers=opts["workers"], seed=opts["seed"])
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            report = check(instance, solved.routes)
            if not report.feasible:
                raise CommandError(
                    f"{instance.name}: solver returned an infeasible solution: {report.violations[0]}"
                )
            result = {
                "instance": instance.name,
                "vehicles": report.vehicles,
                "distance": round(report.distance, 1 if instance.family == "solomon" else 4),
                "routes": [[instance.ids[p] for p in route] for route in solved.routes],
                "seconds": round(solved.seconds, 3),
            }
            if opts["json"]:
                self.stdout.write(json.dumps(result))
            else:
                self.stdout.write(
                    f"{result['instance']}: {result['vehicles']} vehicles, distance {result['distance']}"
                    f" ({result['seconds']} s)"
                )
