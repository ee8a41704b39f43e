"""`manage.py load_roads FILE.osm.pbf`: import a road network into PostGIS for pgRouting.

Thin: the work is dispatch.services.roads.load_roads (one transaction; a bad file changes nothing).
"""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.engine.roads import RoadDataError
from dispatch.services.roads import load_roads


class Command(BaseCommand):
    help = "Import the routable ways of an OpenStreetMap extract into PostGIS (schema roads) for pgRouting."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="an .osm.pbf or .osm file")

    def handle(self, *args, **opts):
        started = time.perf_counter()
        try:
            report = load_roads(path=opts["file"])
        except (RoadDataError, ValueError) as exc:
            raise CommandError(str(exc))
        self.stdout.write(
            f"Loaded {report.vertices} vertices and {report.edges} edges from {opts['file']} "
            f"in {time.perf_counter() - started:.1f} s"
        )
        for profile, count in report.snap_vertices.items():
            self.stdout.write(f"  {profile}: {count} vertices in the largest strongly connected part")
