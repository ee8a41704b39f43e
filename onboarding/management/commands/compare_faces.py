"""Compare the faces in two images: `manage.py compare_faces IMAGE_A IMAGE_B --json`."""

from django.core.management.base import BaseCommand, CommandError

from onboarding.management.commands._output import emit
from onboarding.verification.faces import DEFAULT_TOLERANCE, compare_faces
from onboarding.verification.images import UnreadableImage


class Command(BaseCommand):
    help = "Is the face in IMAGE_A the face in IMAGE_B? (distance <= tolerance, one face in each)"

    def add_arguments(self, parser):
        parser.add_argument("image_a")
        parser.add_argument("image_b")
        parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, image_a, image_b, tolerance, json, **options):
        try:
            result = compare_faces(image_a, image_b, tolerance=tolerance)
        except UnreadableImage as error:
            raise CommandError(str(error))
        if result.distance is None:
            raise CommandError(result.reason)
        emit(self, result.as_dict() | ({} if json else {"reason": result.reason}), as_json=json)
