"""Detect the vehicle in a photo: `manage.py detect_vehicle IMAGE --json`."""

from django.core.management.base import BaseCommand, CommandError

from onboarding.management.commands._output import emit
from onboarding.pipeline import VEHICLE_CAPACITIES
from onboarding.verification.images import UnreadableImage
from onboarding.verification.vehicles import detect_vehicle


class Command(BaseCommand):
    help = "Detect objects (YOLOX-nano, COCO) and name the main vehicle's type and default capacity."

    def add_arguments(self, parser):
        parser.add_argument("image")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, image, json, **options):
        try:
            result = detect_vehicle(image, capacities=VEHICLE_CAPACITIES)
        except UnreadableImage as error:
            raise CommandError(str(error))
        emit(self, result.as_dict(), as_json=json)
