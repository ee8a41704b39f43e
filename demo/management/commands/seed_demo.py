"""`manage.py seed_demo`: the Helsinki demo city (see demo/seed.py); safe to run again."""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from demo import city
from demo.seed import (
    DEFAULT_SEED,
    read_api_key_file,
    read_device_tokens_file,
    seed_demo_city,
    write_api_key_file,
    write_device_tokens_file,
)


class Command(BaseCommand):
    help = (
        "Seed the Helsinki demo organisation: users, hubs, zones, ~50 couriers (each with a driver "
        "account and a phone's device token) and an API key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo organisation first.")
        parser.add_argument("--password", help="Use this password for the demo users instead of random ones.")
        parser.add_argument("--drivers", type=int, default=50, help="How many drivers (default 50).")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed for the city.")
        parser.add_argument(
            "--api-key-file",
            type=Path,
            default=settings.VAR_DIR / "demo-api-key",
            help="Where the simulator's API key is kept (mode 600).",
        )
        parser.add_argument(
            "--devices-file",
            type=Path,
            default=settings.VAR_DIR / "demo-devices.json",
            help="Where the couriers' device tokens are kept (mode 600).",
        )

    def handle(self, *args, **options):
        key_file: Path = options["api_key_file"]
        devices_file: Path = options["devices_file"]
        try:
            result = seed_demo_city(
                graph=city.city_graph(),
                driver_count=options["drivers"],
                seed=options["seed"],
                password=options["password"],
                existing_api_key="" if options["reset"] else read_api_key_file(key_file),
                existing_device_tokens={} if options["reset"] else read_device_tokens_file(devices_file),
                reset=options["reset"],
            )
        except ValidationError as exc:
            raise CommandError(f"Could not seed the demo: {exc}") from exc
        if result.api_key_created:
            write_api_key_file(key_file, result.api_key_plaintext)
        if result.device_tokens_created or not devices_file.exists():
            write_device_tokens_file(devices_file, result.device_tokens)

        org = result.organisation
        created = ", ".join(f"{count} {what}" for what, count in result.created.items())
        self.stdout.write(
            self.style.SUCCESS(f"Demo organisation '{org.name}' ({org.slug}) ready; created {created}.")
        )
        self.stdout.write("Logins (passwords are reset on every run of seed_demo):")
        for username, password in result.passwords.items():
            where = "/admin/" if username == "staff" else "/live/"
            self.stdout.write(f"  {username:<11} {password}   {where}")
        if result.api_key_created:
            self.stdout.write(f"API key 'demo-simulator' (shown once, saved to {key_file}):")
            self.stdout.write(f"  {result.api_key_plaintext}")
        else:
            self.stdout.write(f"API key 'demo-simulator' unchanged, in {key_file}.")
        self.stdout.write(
            f"Couriers' phones: {len(result.device_tokens)} device tokens "
            f"({result.device_tokens_created} new), in {devices_file}."
        )
