"""`manage.py run_demo`: the whole demo in one process.

The ASGI app (HTTP, API, websockets) is served by uvicorn in the main thread; a scheduler
thread runs the simulator every 2 s and the Celery beat tasks in-process (core.scheduler).
Run `seed_demo` first. Ctrl-C stops both.
"""

import logging
import random
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.module_loading import import_string

from core.scheduler import Job, Scheduler, beat_jobs
from demo import city
from demo.seed import read_api_key_file, read_device_tokens_file
from demo.simulator import ApiOrderPlacer, Simulator, wait_until_healthy
from identity.models import Organisation

logger = logging.getLogger("dispatch.demo")

TICK_SECONDS = 2.0
SUMMARY_EVERY_TICKS = 15
HEALTH_TIMEOUT_S = 60.0
# Couriers at real speed need minutes per delivery; a visitor should see some in the first minute.
DEFAULT_SPEED = 4.0


class SimulatorJob:
    """Waits for the server to answer /healthz, then ticks the simulator and logs progress."""

    def __init__(self, simulator: Simulator, client: httpx.Client, should_stop) -> None:
        self.simulator = simulator
        self.client = client
        self.should_stop = should_stop
        self.ready = False
        self.ticks = 0
        self.totals = {"placed": 0, "rejected": 0, "assigned": 0, "delivered": 0, "rated": 0}
        self.slowest_s = 0.0

    def __call__(self) -> None:
        if not self.ready:
            self.ready = wait_until_healthy(
                self.client, timeout_s=HEALTH_TIMEOUT_S, should_stop=self.should_stop
            )
            if not self.ready:
                logger.warning("the server did not answer /healthz; the simulator will try again")
                return
            logger.info("server is up; the simulator starts placing orders")
        report = self.simulator.tick(timezone.now())
        self.ticks += 1
        self.slowest_s = max(self.slowest_s, report.seconds)
        for key in self.totals:
            self.totals[key] += getattr(report, key)
        if self.ticks % SUMMARY_EVERY_TICKS == 0:
            logger.info(
                "simulator: %d ticks, %d orders placed (%d refused), %d assigned, %d delivered, "
                "%d rated; last tick %.2f s, slowest %.2f s",
                self.ticks,
                self.totals["placed"],
                self.totals["rejected"],
                self.totals["assigned"],
                self.totals["delivered"],
                self.totals["rated"],
                report.seconds,
                self.slowest_s,
            )


class Command(BaseCommand):
    help = "Serve the app with uvicorn and run the demo simulator and periodic jobs in-process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-simulator", action="store_true", help="Serve only; place no demo orders.")
        parser.add_argument(
            "--speed",
            type=float,
            default=DEFAULT_SPEED,
            help=f"Fast-forward courier movement (default {DEFAULT_SPEED:g}x; 1 = real time).",
        )
        parser.add_argument("--orders-per-minute", type=float, default=20.0)
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="Seed the simulator's choices (orders, answers to offers, GPS noise) to repeat a run; "
            "by default a new one, shown in the banner.",
        )
        parser.add_argument("--api-key-file", default=str(settings.VAR_DIR / "demo-api-key"))
        parser.add_argument("--devices-file", default=str(settings.VAR_DIR / "demo-devices.json"))

    def handle(self, *args, **options):
        if settings.SECURE_SSL_REDIRECT:
            raise CommandError("run_demo serves plain HTTP: set DEBUG=true (or SECURE_SSL_REDIRECT=false).")
        host, port = options["host"], options["port"]
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host  # noqa: S104
        base_url = f"http://{client_host}:{port}"

        jobs = beat_jobs()
        scheduler = Scheduler(jobs)
        client = None
        notes = []
        if not options["no_simulator"]:
            simulator, client = self.build_simulator(base_url, options)
            jobs.append(
                Job(
                    "demo-simulator",
                    TICK_SECONDS,
                    SimulatorJob(simulator, client, lambda: scheduler.stopping),
                )
            )
            notes.append(
                f"Simulator: {options['orders_per_minute']:g} orders/min through the API; "
                f"{len(simulator.device_tokens)} couriers on the driver API, at {options['speed']:g}x real speed "
                f"(--seed {options['seed']})."
            )
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per demo order is noise
        self.print_banner(host=host, port=port, jobs=jobs, notes=notes)
        scheduler.start()
        try:
            self.serve(host=host, port=port)
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("Stopping…")
            scheduler.stop()
            if client is not None:
                client.close()
        self.stdout.write("Stopped.")

    def build_simulator(self, base_url: str, options) -> tuple[Simulator, httpx.Client]:
        organisation = Organisation.objects.filter(slug=city.ORG_SLUG).first()
        api_key = read_api_key_file(Path(options["api_key_file"]))
        device_tokens = read_device_tokens_file(Path(options["devices_file"]))
        if organisation is None or not api_key or not device_tokens:
            raise CommandError("No demo city yet: run `manage.py seed_demo` first (or pass --no-simulator).")
        client = httpx.Client(base_url=base_url, timeout=10.0)
        if options["seed"] is None:
            options["seed"] = time.time_ns() % 1_000_000
        simulator = Simulator(
            organisation=organisation,
            graph=city.city_graph(),
            place_order=ApiOrderPlacer(client, api_key),
            http=client,
            device_tokens=device_tokens,
            api_key=api_key,
            rng=random.Random(options["seed"]),
            orders_per_minute=options["orders_per_minute"],
            speed_multiplier=options["speed"],
            tick_seconds=TICK_SECONDS,
            recipient_names=[f"{f} {last}" for f in city.FIRST_NAMES for last in city.LAST_NAMES],
            service_bbox=city.BBOX,
        )
        return simulator, client

    def serve(self, *, host: str, port: int) -> None:
        """The production server (uvicorn), as the README's production start runs it."""
        import uvicorn

        application = import_string(settings.ASGI_APPLICATION)
        uvicorn.Server(
            uvicorn.Config(
                application, host=host, port=port, lifespan="off", ws="websockets", log_level="info"
            )
        ).run()

    def print_banner(self, *, host: str, port: int, jobs: list[Job], notes: list[str]) -> None:
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}"
        write = self.stdout.write
        write(self.style.SUCCESS("Fleetroot demo"))
        write(f"  Live map   {base}/live/")
        write(f"  Admin      {base}/admin/")
        write(f"  API docs   {base}/api/docs/")
        write("  Logins: printed by `manage.py seed_demo` (admin, dispatcher for the map; staff for admin).")
        write("  Forgot them? Run seed_demo again: it prints fresh passwords and keeps the city.")
        if jobs:
            write("  In-process jobs: " + ", ".join(f"{job.name} every {job.interval_s:g} s" for job in jobs))
        for note in notes:
            write(f"  {note}")
        if not (settings.BASE_DIR / "static" / "vendor" / "leaflet" / "leaflet.js").exists():
            write(
                self.style.WARNING("  Leaflet is not vendored: run scripts/vendor_frontend.sh for the map.")
            )
        write("  Quit with CONTROL-C.")
