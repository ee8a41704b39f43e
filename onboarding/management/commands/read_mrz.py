"""Read the MRZ from a photo or scan of an ID: `manage.py read_mrz IMAGE --json`."""

from django.core.management.base import BaseCommand, CommandError

from onboarding.management.commands._output import emit
from onboarding.verification.images import UnreadableImage
from onboarding.verification.ocr import NoMrzFound, read_mrz


class Command(BaseCommand):
    help = "Find, OCR, repair and validate the machine-readable zone in an image."

    def add_arguments(self, parser):
        parser.add_argument("image")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, image, json, **options):
        try:
            result = read_mrz(image)
        except (UnreadableImage, NoMrzFound) as error:
            raise CommandError(str(error))
        emit(self, result.as_dict(), as_json=json)
